#pragma once
// One exception type for every user-facing failure. The message is a complete
// sentence for the user (where, what is wrong, what to do); the CLI prints it
// on one line and exits non-zero. Internal invariants use assert, not this.
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace duet {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
};

// Device memory exhausted (the message says what to lower). An Error like any
// other, so it ends a run with one line; a caller that can go on with something
// smaller (duet bench's next configuration) catches this type.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Adds a context prefix ("file.json: ") to an Error raised inside `body`.
template <typename Body>
auto with_context(const std::string& context, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace duet
