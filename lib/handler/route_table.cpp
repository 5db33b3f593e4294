// tether::route_table and route_handle (thread safe; see route_table.hpp).
#include "route_table.hpp"

#include <tether/error.hpp>

#include <system_error>

namespace tether {

route_table::route_table() : table_(std::make_shared<route_handle::table>()) {}

std::uint64_t route_handle::table::insert(const std::string& pattern, bool replace, route_kind accepts,
                                         std::shared_ptr<const route::function> fn) {
  auto& t = *this;
  std::lock_guard lock(t.m);
  const auto id = t.next_id++;
  if (auto ec = t.router.add(pattern, id, replace)) {
    const char* why = ec == error::invalid_pattern ? pattern_problem(pattern) : nullptr;
    throw std::system_error(ec, "route '" + pattern + "'" + (why ? std::string(": ") + why : std::string()));
  }
  if (auto old = t.ids.find(pattern); old != t.ids.end())
    t.fns.erase(old->second);
  t.ids[pattern] = id;
  t.fns[id] = entry{std::move(fn), accepts};
  return id;
}

route_handle route_table::add(route&& r) {
  const auto id = table_->insert(r.pattern, r.replace, r.accepts, std::make_shared<const route::function>(std::move(r.fn)));
  return route_handle(table_, r.pattern, id);
}

route_handle route_table::add(const route& r) {
  const auto id = table_->insert(r.pattern, r.replace, r.accepts, std::make_shared<const route::function>(r.fn));
  return route_handle(table_, r.pattern, id);
}

void route_table::set_fallback(route::function fn) {
  std::lock_guard lock(table_->m);
  table_->fallback = std::make_shared<const route::function>(std::move(fn));
}

std::vector<std::string> route_table::patterns() const {
  std::lock_guard lock(table_->m);
  return table_->router.patterns();
}

bool route_handle::remove() {
  auto t = table_.lock();
  if (!t)
    return false;
  std::lock_guard lock(t->m);
  auto it = t->ids.find(pattern_);
  if (it == t->ids.end() || it->second != id_)
    return false;
  t->router.remove(pattern_);
  t->fns.erase(id_);
  t->ids.erase(it);
  return true;
}

} // namespace tether
