#pragma once
// The handler's subscriptions (handler::subscribe): topic → the function that
// receives its publications. Changed on the handler's strand; read from any
// thread by handler::topics(), hence the mutex.
#include <tether/handler.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace tether::detail {

struct subscription {
  std::string topic;
  std::shared_ptr<const route::function> fn;
  bool active = false; // acknowledged: renewed after each reconnect
};

class subscription_table {
public:
  /// A new entry, or nullptr if the topic has one already.
  std::shared_ptr<subscription> add(std::string topic, route::function fn);
  std::shared_ptr<subscription> find(const std::string& topic) const;
  /// Removes `s` if it is still the topic's entry; false otherwise.
  bool remove(const std::shared_ptr<subscription>& s);
  /// The acknowledged entries, to renew after a reconnect.
  std::vector<std::shared_ptr<subscription>> active() const;
  std::vector<std::string> topics() const;
  std::size_t size() const;

private:
  mutable std::mutex m_;
  std::unordered_map<std::string, std::shared_ptr<subscription>> by_topic_;
};

} // namespace tether::detail
