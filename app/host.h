// The machine's name as batch records and lock files store it (gethostname; "unknown"
// when it cannot be read).
#pragma once

#include <string>

namespace t2v {

std::string host_name();

}  // namespace t2v
