#pragma once
// The state behind tether::route_table and route_handle: the path trie plus the
// functions its values name, under one mutex so routes may change while the
// handler dispatches. Private to lib/.
#include <tether/handler.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tether {

struct route_handle::table {
  std::mutex m;
  path_router router;
  struct entry {
    std::shared_ptr<const route::function> fn;
    route_kind accepts = route_kind::text;
  };
  std::unordered_map<std::uint64_t, entry> fns;
  std::unordered_map<std::string, std::uint64_t> ids; // pattern → id, so a stale handle cannot remove a replacement
  std::uint64_t next_id = 1;
  std::shared_ptr<const route::function> fallback;

  /// Registers `fn` under `pattern` and returns its id; throws
  /// std::system_error(route_conflict / invalid_pattern, saying why).
  std::uint64_t insert(const std::string& pattern, bool replace, route_kind accepts,
                       std::shared_ptr<const route::function> fn);
};

} // namespace tether
