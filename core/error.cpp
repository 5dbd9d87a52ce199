#include "core/error.h"

namespace t2v {

void internal_error(const char* expr, const char* file, int line, const std::string& msg) {
  throw Error(kExitSoftware,
              fmt::format("internal error: {} failed at {}:{}{}{}", expr, file, line, msg.empty() ? "" : ": ", msg),
              "this is a bug in t2v; please report it with the command line");
}

}  // namespace t2v
