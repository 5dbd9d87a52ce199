// The machine's name and the time as batch and serve records and lock files store them.
#pragma once

#include <string>

namespace t2v {

// gethostname; "unknown" when it cannot be read.
std::string host_name();
// Now in UTC as ISO 8601 to the second ("2026-12-03T15:53:15Z").
std::string utc_now();

}  // namespace t2v
