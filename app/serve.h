// `t2v serve`: an HTTP server with the OpenAI Videos API shape (POST /v1/videos, poll, download)
// in front of one loaded model: jobs render one at a time in submission order, every accepted job
// is on disk before it is acknowledged and survives a crash or kill -9, live latent previews
// while a job denoises, and a browser page at /. docs/serve.md has the API, the on-disk layout,
// the state machine and the exit codes.
#pragma once

#include <cstddef>
#include <string>

#include "app/options.h"

namespace t2v {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: any free port (printed)
  std::string jobs_dir = "t2v-jobs";    // one folder per job
  std::string api_key;                  // "" = no authentication (else also from T2V_API_KEY)
  GenerateOptions defaults;             // model, device, dtype and the per-request defaults
  size_t max_queue = 100;               // queued jobs beyond this are refused with 429
  int preview_every = 5;                // live preview every N denoising steps and the last; 0 = none
  int http_threads = 16;                // connections served at once
  int read_timeout_s = 10;              // a client that sends nothing for this long is dropped
  double lock_timeout_s = 12 * 3600.0;  // another server's job lock is taken over after this
  bool quiet = false;                   // no per-job log lines
};

// Runs until SIGTERM/SIGINT: 0 when no job was left waiting, 75 when some were (they run when
// a server starts on the same jobs dir again); the sysexits code of a startup failure.
int run_serve(ServeOptions& o);

}  // namespace t2v
