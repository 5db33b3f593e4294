#include <tether/codec.hpp>
#include <tether/error.hpp>

#include <stdexcept>
#include <utility>

#include "json_text.hpp"
#include "text_decode.hpp"
#include "utf8.hpp"

namespace tether {
namespace {

using detail::error_field;
using detail::id_field;
using detail::reply_to_field;
using detail::envelope_fields;

// Reasons end up in logs: keep them printable and bounded whatever the peer sent
// (nlohmann quotes the offending input in its messages).
void set_reason(std::string& reason, std::string_view text) {
  constexpr std::string_view ellipsis = "...";
  const bool cut = text.size() > codec::max_reason_size;
  if (cut)
    text = text.substr(0, codec::max_reason_size - ellipsis.size());
  reason.clear();
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    reason += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (cut)
    reason += ellipsis;
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 1,
// column 2: syntax error ..."; the id and the line/column (we give the byte) are noise.
std::string_view nlohmann_message(std::string_view what) {
  if (const auto p = what.find("] "); p != std::string_view::npos)
    what.remove_prefix(p + 2);
  if (what.starts_with("parse error"))
    if (const auto p = what.find(": "); p != std::string_view::npos)
      what.remove_prefix(p + 2);
  return what;
}

// A raw scan before parsing: rejects deep nesting without building it, so later
// recursive JSON operations (copy, dump, ==) stay shallow. Only meaningful for
// valid JSON; for anything else the parser reports the real problem.
bool nested_deeper_than(std::string_view s, std::size_t limit) noexcept {
  std::size_t depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') {
      i = detail::json_string_end(s, i + 1); // strings hold no nesting: skip them whole
      if (i == std::string_view::npos)
        return false;
    } else if (c == '[' || c == '{') {
      if (++depth > limit)
        return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

bool valid_id(const json& j) noexcept { return j.is_string() || j.is_number(); }

// Binary and discarded values have no JSON text form (dump would emit a
// non-JSON "<discarded>" or an object the peer never sent).
bool representable(const json& j) noexcept {
  switch (j.type()) {
  case json::value_t::binary:
  case json::value_t::discarded:
    return false;
  case json::value_t::array:
  case json::value_t::object:
    for (const auto& v : j)
      if (!representable(v))
        return false;
    return true;
  default:
    return true;
  }
}

std::string quoted(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s += '"';
  s += name;
  s += '"';
  return s;
}

// Validates one decoded JSON value as an envelope and moves it into `e`.
// On failure returns the reason and leaves `j` intact.
std::optional<std::string> to_envelope(json& j, envelope_fields names, envelope& e) {
  if (!j.is_object())
    return std::string("envelope is not a JSON object (got ") + j.type_name() + ")";
  auto& obj = j.get_ref<json::object_t&>();
  const auto path = obj.find(names.path);
  if (path == obj.end())
    return "missing " + quoted(names.path) + " (a string)";
  if (!path->second.is_string())
    return quoted(names.path) + " must be a string, got " + path->second.type_name();
  for (const auto name : {id_field, reply_to_field})
    if (const auto it = obj.find(name); it != obj.end() && !valid_id(it->second))
      return quoted(name) + " must be a string or number, got " + it->second.type_name();
  if (const auto it = obj.find(error_field); it != obj.end() && !it->second.is_string())
    return quoted(error_field) + " must be a string, got " + it->second.type_name();

  e.path = std::move(path->second.get_ref<std::string&>());
  obj.erase(path);
  if (const auto it = obj.find(names.data); it != obj.end()) {
    e.data = std::move(it->second);
    obj.erase(it);
  }
  if (const auto it = obj.find(id_field); it != obj.end()) {
    e.id = std::move(it->second);
    obj.erase(it);
  }
  if (const auto it = obj.find(reply_to_field); it != obj.end()) {
    e.reply_to = std::move(it->second);
    obj.erase(it);
  }
  if (const auto it = obj.find(error_field); it != obj.end()) {
    e.error = std::move(it->second.get_ref<std::string&>());
    obj.erase(it);
  }
  e.extra = std::move(j); // what is left: the unknown fields
  return std::nullopt;
}

// [path length: 2 bytes, big-endian][path][payload] (docs/protocol.md).
std::error_code decode_binary(std::string_view frame, binary_format format, std::vector<envelope>& out,
                              std::string& reason) {
  envelope e;
  e.binary = true;
  if (format == binary_format::raw) {
    e.bytes.assign(frame);
    out.push_back(std::move(e));
    return {};
  }
  if (frame.size() < 2) {
    set_reason(reason, "binary envelope of " + std::to_string(frame.size()) +
                           " bytes: shorter than its 2-byte path length");
    return error::invalid_envelope;
  }
  const std::size_t length =
      static_cast<std::size_t>(static_cast<unsigned char>(frame[0])) << 8 | static_cast<unsigned char>(frame[1]);
  if (length > frame.size() - 2) {
    set_reason(reason, "binary envelope: path length " + std::to_string(length) + " runs past the " +
                           std::to_string(frame.size() - 2) + " bytes that follow");
    return error::invalid_envelope;
  }
  const auto path = frame.substr(2, length);
  if (!detail::is_valid_utf8(path)) {
    set_reason(reason, "binary envelope: the path is not UTF-8");
    return error::invalid_envelope;
  }
  e.path.assign(path);
  e.bytes.assign(frame.substr(2 + length));
  out.push_back(std::move(e));
  return {};
}

std::error_code encode_binary(const envelope& e, binary_format format, std::string& out) {
  if (format == binary_format::raw) {
    out += e.bytes;
    return {};
  }
  if (e.path.size() > 0xffff || !detail::is_valid_utf8(e.path))
    return error::invalid_envelope;
  out += static_cast<char>(e.path.size() >> 8);
  out += static_cast<char>(e.path.size() & 0xff);
  out += e.path;
  out += e.bytes;
  return {};
}

std::error_code decode_frame(std::string_view frame, bool binary_frame, envelope_fields names, binary_format format,
                             std::vector<envelope>& out, std::string& reason) {
  if (binary_frame)
    return decode_binary(frame, format, out, reason);
  if (nested_deeper_than(frame, field_codec::max_depth)) {
    set_reason(reason, "JSON nested deeper than " + std::to_string(field_codec::max_depth) + " levels");
    return error::invalid_envelope;
  }
  if (envelope e; detail::decode_text_flat(frame, names, e)) {
    out.push_back(std::move(e));
    return {};
  }
  return detail::decode_text_full(frame, names, out, reason);
}

} // namespace

std::error_code detail::decode_text_full(std::string_view frame, envelope_fields names, std::vector<envelope>& out,
                                         std::string& reason) {
  json j;
  try {
    j = json::parse(frame.data(), frame.data() + frame.size());
  } catch (const json::parse_error& ex) {
    set_reason(reason, "not JSON at byte " + std::to_string(ex.byte) + ": " + std::string(nlohmann_message(ex.what())));
    return error::invalid_envelope;
  } catch (const json::exception& ex) { // out_of_range: a number too large for a double
    set_reason(reason, "not JSON: " + std::string(nlohmann_message(ex.what())));
    return error::invalid_envelope;
  }

  if (!j.is_array()) {
    envelope e;
    if (auto why = to_envelope(j, names, e)) {
      set_reason(reason, *why);
      return error::invalid_envelope;
    }
    out.push_back(std::move(e));
    return {};
  }
  // A batch: all or nothing, so a caller never dispatches half a frame.
  auto& items = j.get_ref<json::array_t&>();
  std::vector<envelope> batch(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto why = to_envelope(items[i], names, batch[i])) {
      set_reason(reason, "element " + std::to_string(i) + ": " + *why);
      return error::invalid_envelope;
    }
  }
  out.insert(out.end(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
  return {};
}

namespace {

// A string that nlohmann's dump (ensure_ascii off, invalid UTF-8 replaced)
// writes unchanged between its quotes.
bool plain(std::string_view s) noexcept {
  return !detail::needs_json_escape(s) && detail::is_valid_utf8(s);
}

// Appends `j` as nlohmann's dump(-1, ' ', false, replace) writes it, straight
// into `out`: no json copy of a key or the path, no temporary string per value.
void append_json(std::string& out, const json& j) {
  if (j.is_string() && plain(j.get_ref<const std::string&>())) {
    out += '"';
    out += j.get_ref<const std::string&>();
    out += '"';
    return;
  }
  nlohmann::detail::serializer<json> writer(nlohmann::detail::output_adapter<char>(out), ' ',
                                            json::error_handler_t::replace);
  writer.dump(j, false, false, 0);
}

void append_string(std::string& out, std::string_view s) {
  if (!plain(s)) {
    append_json(out, json(s));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void append_member(std::string& out, std::string_view key, const json& value) {
  append_string(out, key);
  out += ':';
  append_json(out, value);
  out += ',';
}

void append_member(std::string& out, std::string_view key, std::string_view value) {
  append_string(out, key);
  out += ':';
  append_string(out, value);
  out += ',';
}

std::error_code encode_envelope(const envelope& e, envelope_fields names, binary_format format, std::string& out,
                                bool& binary_frame) {
  if (e.binary) {
    if (auto ec = encode_binary(e, format, out))
      return ec;
    binary_frame = true;
    return {};
  }
  if (!e.extra.is_object() || !representable(e.data) || !representable(e.extra))
    return error::invalid_envelope;
  for (auto it = e.extra.begin(); it != e.extra.end(); ++it)
    if (names.reserved(it.key()))
      return error::invalid_envelope;
  for (const auto* id : {&e.id, &e.reply_to})
    if (*id && !valid_id(**id))
      return error::invalid_envelope;

  const auto old_size = out.size();
  try {
    // One allocation for the usual envelope instead of one per doubling.
    const auto data_size = e.data.is_string() ? e.data.get_ref<const std::string&>().size() : 16;
    out.reserve(old_size + names.path.size() + names.data.size() + e.path.size() + data_size + 16);
    out += '{';
    append_member(out, names.path, std::string_view(e.path));
    append_member(out, names.data, e.data);
    if (e.id)
      append_member(out, id_field, *e.id);
    if (e.reply_to)
      append_member(out, reply_to_field, *e.reply_to);
    if (e.error)
      append_member(out, error_field, std::string_view(*e.error));
    for (auto it = e.extra.begin(); it != e.extra.end(); ++it)
      append_member(out, it.key(), it.value());
    out.back() = '}'; // over the last ','; there is always one (path)
  } catch (...) {
    out.resize(old_size); // only bad_alloc can get here: leave `out` as it was
    throw;
  }
  binary_frame = false;
  return {};
}

constexpr envelope_fields default_names{"path", "data"};

} // namespace

const char* to_string(binary_format f) noexcept {
  switch (f) {
  case binary_format::path_prefixed: return "path_prefixed";
  case binary_format::raw: return "raw";
  }
  return "unknown";
}

field_codec::field_codec(std::string path_field, std::string data_field, binary_format binary)
    : path_field_(std::move(path_field)), data_field_(std::move(data_field)), binary_(binary) {
  const auto fixed = [](std::string_view n) { return n == id_field || n == reply_to_field || n == error_field; };
  if (path_field_.empty() || data_field_.empty() || path_field_ == data_field_ || fixed(path_field_) ||
      fixed(data_field_))
    throw std::invalid_argument("field_codec: field names must be non-empty, distinct, and not id/reply_to/error");
}

std::error_code field_codec::encode(const envelope& e, std::string& out, bool& binary_frame) const {
  return encode_envelope(e, {path_field_, data_field_}, binary_, out, binary_frame);
}

std::error_code field_codec::decode(std::string_view frame, bool binary_frame, std::vector<envelope>& out,
                                    std::string& reason) const {
  return decode_frame(frame, binary_frame, {path_field_, data_field_}, binary_, out, reason);
}

std::error_code json_codec::encode(const envelope& e, std::string& out, bool& binary_frame) const {
  return encode_envelope(e, default_names, binary_, out, binary_frame);
}

std::error_code json_codec::decode(std::string_view frame, bool binary_frame, std::vector<envelope>& out,
                                   std::string& reason) const {
  return decode_frame(frame, binary_frame, default_names, binary_, out, reason);
}

} // namespace tether
