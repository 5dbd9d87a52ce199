#include "app/probe.h"

#include <fmt/format.h>

#include "core/error.h"

namespace t2v {

int run_probe(const ProbeOptions& o) {
  static const char* kComponents[] = {"text-encoder", "dit", "vae-decode", "vae-encode"};
  bool known = false;
  for (const char* c : kComponents) known = known || o.component == c;
  if (!known)
    throw Error(kExitUsage, fmt::format("unknown probe component '{}'", o.component),
                "use text-encoder, dit, vae-decode or vae-encode");
  if (o.device != "cpu" && o.device != "cuda")
    throw Error(kExitUsage, fmt::format("--device '{}' is unknown", o.device), "use cpu or cuda");
  fmt::print(stderr, "t2v: probe '{}' is not implemented yet in this version\n", o.component);
  return 2;
}

}  // namespace t2v
