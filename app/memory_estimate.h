// Will a render fit? Checked from the loaded model's configs before any weights are read
// (docs/bad_inputs.md #74): the transformer-token count with the model's real compression
// (VAE spatial factor x DiT patch, temporal factor), and an estimate of the peak memory
// against what the process can get. A refusal names the predicted figure and the largest
// size (same aspect ratio) that fits.
//
// The estimate (bytes; e = bytes per activation element: 4 on the CPU, the compute dtype's
// size on CUDA, the VAE's own for the VAE terms), per stage, the peak being the largest.
// What the computing device holds (on the CPU: host memory):
//   encode   text-encoder weights (umT5 parameter count from its config x e)
//   denoise  DiT weights (every tensor of wan_dit_weight_list: the GEMM weights in the
//            compute dtype, the fp32 islands in fp32) [+ umT5 when kept]
//            + latents and scheduler state: 8 x C x T x h x w x 4
//            + one DiT step: B x N x (10 dim + 2 ffn_dim) x e   (B = 2 with CFG, N tokens:
//              hidden states, modulated input, q, k, v, roped q/k, attention and projection
//              outputs, the FFN hidden state and its GELU)
//            + the attention working set: CPU threads x 256 x N x 4 (one query block of
//              scores per thread; host memory on the test device too); none on CUDA
//            + one block's cross-attention keys/values: B x text_len x dim x 2 x e (each
//              block projects them and drops them)
//   decode   DiT weights + VAE decoder weights (72.5M parameters for base width 96, scaled by
//            width^2) + the chunked decode of docs/perf_vae.md (P latent pixels): the causal
//            cache 151,328 x P x r and one chunk's working set 110,592 x P x f / 4, both x e x
//            (width / 96) x (spatial factor / 8)^2, r = (2 (num_res_blocks + 1) + 1) / 7, f = the
//            frames of a chunk (the temporal factor, 1 for a one-frame video)
//            + 32 MiB of im2col columns on the CPU (and the test device) + the frames kept for --preview (x 3 bytes)
//            and --dump-frames (x 12 bytes)
// On the host besides (every device): the process's resident memory at the time of the
// check (VmRSS: libraries, buffers, the tokenizer), and the pages of the weight files a
// load reads (ModelConfigs::file_bytes, from the headers): a mapped file's pages count in
// the resident set while it is mapped, so the DiT file's bytes count from its load to the
// end (its store stays open) and umT5's and the VAE decoder's while they load (on the CPU
// the VAE's load and its decode are not at once: the larger of the two counts).
// --offload (off the CPU): of the DiT's blocks the device holds kOffloadWindow, the host
// all of them (in the compute dtype) besides its file's pages.
// Image-to-video adds the CLIP image encoder (parameter count from its config x e) and the VAE
// encoder (54.5M parameters for base width 96) to denoise and decode (they stay loaded), the
// image tokens' cross-attention keys/values (one block's) to denoise, and to encode the conditioning: both
// of those, the VAE decoder, the input video (F x H x W x 3 in fp32 and in the VAE's dtype)
// and the VAE encoder's chunk working set (taken as the decoder's). These terms are not yet
// measured against real image-to-video runs, nor are the device figures against a GPU.
// Wan2.2 I2V-A14B and TI2V-5B with an image count the VAE encoder without CLIP; the two
// A14B experts count twice on CUDA unless --low-memory (on the host the pipeline keeps one
// when two do not fit, so one is what must fit).
// Against the per-stage high-water marks (VmHWM) of real CPU runs it measured 0.95x-1.07x
// (docs/memory.md; MemoryEstimate.*), so a suggested size or frame count keeps 15% to spare.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "app/model_loader.h"
#include "app/render_request.h"

namespace t2v {

// One stage's peak: host memory (the process's resident set) and, off the CPU, device
// memory (0 on the CPU). The test device's memory is host memory: it counts in both.
struct StageMemory {
  uint64_t host = 0, device = 0;
};

struct MemoryEstimate {
  StageMemory encode, denoise, decode;  // each stage's peak (weights included)
  int64_t tokens = 0;                   // transformer tokens per sample
  bool on_device = false;               // CUDA: the device figures are the ones checked
  uint64_t host_peak() const;
  uint64_t device_peak() const;
  uint64_t peak() const;  // the figure checked against the limit: device_peak on CUDA, else host_peak
};

// The estimate for rendering `r` with the configs and load options of a pipeline.
MemoryEstimate estimate_render_memory(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r);

// What the process can still allocate on `dev`: for the CPU (and the test device) the
// smallest of /proc/meminfo's MemAvailable, the cgroup's memory.max - memory.current and
// `ulimit -v` minus the address space in use; for CUDA the device's free memory. `source`
// names the binding limit. 0 when unknown (then nothing is refused).
uint64_t available_memory_bytes(Device dev, std::string* source);

// The estimate of a render against the limit: o.max_memory (--max-memory) when set, else
// available_memory_bytes. When it does not fit, `refusal` and `hint` are the one-line
// error: the predicted figure, the largest frame count (same size) and the largest size
// (same aspect ratio, same frames) that fit.
struct RenderPlan {
  MemoryEstimate estimate;
  uint64_t limit = 0;  // 0: unknown (nothing is refused)
  std::string limit_source;
  bool fits = true;
  int largest_frames = 0;    // 0: none fits
  std::string largest_size;  // "WxH", empty: none fits
  std::string refusal, hint;
};
RenderPlan plan_render(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r);

// `t2v generate --plan`: the table (text) or one JSON object.
std::string format_render_plan(const RenderPlan& p, const RenderRequest& r, const std::string& model, Device dev);
nlohmann::json render_plan_json(const RenderPlan& p, const RenderRequest& r, const std::string& model, Device dev);

// Error(64) when the video needs more transformer tokens than t2v allows (400,000) for this
// model's compression; Error(69) when the estimate exceeds the limit (plan_render). Both
// name the figures and the largest size of the same aspect ratio that fits.
void check_render_fits(const ModelConfigs& c, const PipelineLoadOptions& o, const RenderRequest& r);

}  // namespace t2v
