#include "tls_context.hpp"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace tether::detail {

namespace {

// What identifies a context: the settings and, for each file, its identity on
// disk now (so a replaced certificate is not served from the cache).
using key_type = std::tuple<std::string, std::string, std::string, std::string, bool, std::vector<long long>>;

key_type key_of(const tls_options& tls) {
  std::vector<long long> stamps;
  for (const auto* path : {&tls.ca_file, &tls.ca_dir, &tls.cert_file, &tls.key_file}) {
    struct stat st {};
    if (!path->empty() && ::stat(path->c_str(), &st) == 0) {
      stamps.push_back(static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec);
      stamps.push_back(static_cast<long long>(st.st_size));
      stamps.push_back(static_cast<long long>(st.st_ino));
    } else {
      stamps.insert(stamps.end(), {0, 0, 0});
    }
  }
  return {tls.ca_file, tls.ca_dir, tls.cert_file, tls.key_file, tls.insecure_skip_verify, std::move(stamps)};
}

std::shared_ptr<asio::ssl::context> build(const tls_options& tls, std::string& detail) {
  namespace ssl = asio::ssl;
  std::error_code ec;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (tls.insecure_skip_verify) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->set_verify_mode(ssl::verify_peer);
    std::string from = "the system store";
    if (!tls.ca_file.empty()) {
      from = "tls.ca_file '" + tls.ca_file + "'";
      ctx->load_verify_file(tls.ca_file, ec);
    }
    if (!ec && !tls.ca_dir.empty()) {
      from = "tls.ca_dir '" + tls.ca_dir + "'";
      ctx->add_verify_path(tls.ca_dir, ec);
    }
    if (!ec && tls.ca_file.empty() && tls.ca_dir.empty())
      ctx->set_default_verify_paths(ec);
    if (ec) {
      detail = "cannot load CA certificates from " + from + ": " + ec.message();
      return nullptr;
    }
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (!ec)
      ctx->use_private_key_file(tls.key_file.empty() ? tls.cert_file : tls.key_file, ssl::context::pem, ec);
    if (ec) {
      detail = "cannot load the client certificate '" + tls.cert_file + "' or its key: " + ec.message();
      return nullptr;
    }
  }
  return ctx;
}

} // namespace

std::shared_ptr<asio::ssl::context> client_tls_context(const tls_options& tls, std::string& detail) {
  static std::mutex m;
  static std::map<key_type, std::weak_ptr<asio::ssl::context>> cache;
  auto key = key_of(tls);
  std::lock_guard lock(m);
  if (auto it = cache.find(key); it != cache.end()) {
    if (auto ctx = it->second.lock())
      return ctx;
  }
  // Forget contexts nobody holds any more, so the map stays as small as the
  // set of configurations in use.
  std::erase_if(cache, [](const auto& entry) { return entry.second.expired(); });
  auto ctx = build(tls, detail);
  if (ctx)
    cache.emplace(std::move(key), ctx);
  return ctx;
}

} // namespace tether::detail
