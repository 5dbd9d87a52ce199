// One error type for everything a user can cause: a message that names the
// file/key/value, ends with a "hint:" on the fix, and carries a sysexits.h code.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace t2v {

// sysexits.h codes (docs/bad_inputs.md): the CLI exits with Error::code().
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 64,        // bad command-line usage / parameter
  kExitDataErr = 65,      // bad input data (model file, prompt, JSONL)
  kExitNoInput = 66,      // input file missing / unreadable
  kExitUnavailable = 69,  // service unavailable (no GPU, no encoder)
  kExitSoftware = 70,     // internal error
  kExitCantCreate = 73,   // can't create output
  kExitIoErr = 74,        // I/O error (disk full, file changed under us)
  kExitTempFail = 75,     // transient: retry (preemption, sticky CUDA error)
  kExitConfig = 78,       // bad configuration file
};

class Error : public std::runtime_error {
 public:
  // `message` names what is wrong; `hint` says how to fix it (may be empty).
  Error(int code, const std::string& message, const std::string& hint = "")
      : std::runtime_error(hint.empty() ? message : message + "; hint: " + hint), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// Throws t2v::Error(code, fmt::format(...)). Use for user-facing failures.
template <class... Args>
[[noreturn]] void fail(int code, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

// Internal invariant violated: a bug in t2v, not the user's fault (exit 70).
[[noreturn]] void internal_error(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace t2v

// Always-on invariant check (not compiled out in release builds).
#define T2V_ASSERT(cond, ...)                                                                  \
  do {                                                                                         \
    if (!(cond)) ::t2v::internal_error(#cond, __FILE__, __LINE__, ::fmt::format("" __VA_ARGS__)); \
  } while (0)
