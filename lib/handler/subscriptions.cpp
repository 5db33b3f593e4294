#include "subscriptions.hpp"

#include <algorithm>

namespace tether::detail {

std::shared_ptr<subscription> subscription_table::add(std::string topic, route::function fn) {
  std::lock_guard lock(m_);
  if (by_topic_.contains(topic))
    return nullptr;
  auto s = std::make_shared<subscription>();
  s->topic = topic;
  s->fn = std::make_shared<const route::function>(std::move(fn));
  by_topic_.emplace(std::move(topic), s);
  return s;
}

std::shared_ptr<subscription> subscription_table::find(const std::string& topic) const {
  std::lock_guard lock(m_);
  auto it = by_topic_.find(topic);
  return it == by_topic_.end() ? nullptr : it->second;
}

bool subscription_table::remove(const std::shared_ptr<subscription>& s) {
  std::lock_guard lock(m_);
  auto it = by_topic_.find(s->topic);
  if (it == by_topic_.end() || it->second != s)
    return false;
  by_topic_.erase(it);
  return true;
}

std::vector<std::shared_ptr<subscription>> subscription_table::active() const {
  std::lock_guard lock(m_);
  std::vector<std::shared_ptr<subscription>> out;
  for (const auto& [topic, s] : by_topic_)
    if (s->active)
      out.push_back(s);
  // In topic order, so re-subscriptions go out in the same order every time.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->topic < b->topic; });
  return out;
}

std::vector<std::string> subscription_table::topics() const {
  std::lock_guard lock(m_);
  std::vector<std::string> out;
  for (const auto& [topic, s] : by_topic_)
    out.push_back(topic);
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t subscription_table::size() const {
  std::lock_guard lock(m_);
  return by_topic_.size();
}

} // namespace tether::detail
