// The Wan2.2 VAE (is_residual, 2x2 patchify, z_dim 48) against diffusers'
// AutoencoderKLWan and the official Wan2.2 vae2_2.py (goldens from
// tools/golden/gen_wan22_vae_goldens.py): decode and encode from both checkpoint
// layouts, chunked, streamed, whole-sequence and tiled; the config from JSON, from
// the weights and the preset; the real Wan2.2_VAE's names and shapes; the
// rearrangements against plain index loops.
#include <fstream>
#include <map>
#include <sstream>

#include "core/philox.h"
#include "kernels/ops.h"
#include "tests/vae/vae_test_util.h"
#include "vae/wan_vae_residual.h"

namespace t2v {
namespace {

using vae_test::rel_err;

std::string dir22() { return std::string(T2V_TEST_DATA_DIR) + "/vae22"; }
const TensorStore& goldens22() {
  static const TensorStore store = TensorStore::open(dir22() + "/goldens.safetensors");
  return store;
}
Tensor golden22(const std::string& name) { return goldens22().get(name).to(DType::F32).clone(); }
WanVAEConfig config22() { return WanVAEConfig::from_json(dir22() + "/diffusers/config.json"); }

// Bounds on max |ours - reference| / max |reference| in fp32 on the CPU, about 5x the
// error measured against the current goldens (measured values next to each).
constexpr double kDecodeTol = 2e-5;          // measured 2.6e-6 (decode_t3_b2, vs diffusers)
constexpr double kOfficialDecodeTol = 2e-5;  // measured 2.5e-6 (decode_t4, vs the official vae2_2.py)
constexpr double kEncodeTol = 5e-6;          // measured 8.0e-7 (encode_f9_b2 mean)

const char* kDecodeCases[] = {"decode_t1", "decode_t2", "decode_t3_b2", "decode_t4"};
const char* kEncodeCases[] = {"encode_f1", "encode_f5", "encode_f9_b2"};

const WanVAE& vae22(const std::string& layout) {
  static std::map<std::string, WanVAE> cache;
  auto it = cache.find(layout);
  if (it == cache.end()) {
    const std::string path =
        layout == "original" ? dir22() + "/wan22_vae_original.safetensors" : dir22() + "/diffusers";
    it = cache.emplace(layout, WanVAE::load(path, config22())).first;
  }
  return it->second;
}

class Wan22VAEGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(Wan22VAEGolden, ConfigFromWeightsEqualsTheConfigFile) {
  const std::string path =
      GetParam() == "original" ? dir22() + "/wan22_vae_original.safetensors" : dir22() + "/diffusers";
  TensorStore store = TensorStore::open(path);
  std::string prefix;
  EXPECT_STREQ(wan_vae_layout_name(detect_wan_vae_layout(store, &prefix)), GetParam().c_str());
  const WanVAEConfig a = WanVAEConfig::from_weights(store), b = config22();
  EXPECT_TRUE(a.is_residual);
  EXPECT_EQ(a.patch_size, 2);
  EXPECT_EQ(a.summary(), b.summary());
  EXPECT_EQ(a.in_channels, 12);
  EXPECT_EQ(a.latents_mean, b.latents_mean);
  EXPECT_EQ(a.latents_std, b.latents_std);
  EXPECT_EQ(a.spatial_factor(), 16);
  EXPECT_EQ(a.temporal_factor(), 4);
}

TEST_P(Wan22VAEGolden, DecodeMatchesDiffusersAndTheOfficialCode) {
  const WanVAE& vae = vae22(GetParam());
  for (const char* name : kDecodeCases) {
    const Tensor z = golden22(std::string(name) + ".latents");
    const Tensor want = golden22(std::string(name) + ".sample");
    const Tensor chunked = vae.decode(z);
    const Tensor whole = vae.decode_whole_sequence(z);
    const double e = rel_err(chunked, want), e_off = rel_err(chunked, golden22(std::string(name) + ".official"));
    const double e_whole = rel_err(whole, want);
    std::printf("[%s] %-13s %s -> %s: vs diffusers %.2e, vs official %.2e, whole-sequence %.2e\n",
                GetParam().c_str(), name, z.shape().str().c_str(), chunked.shape().str().c_str(), e, e_off, e_whole);
    EXPECT_LE(e, kDecodeTol) << name;
    EXPECT_LE(e_off, kOfficialDecodeTol) << name;
    EXPECT_LE(e_whole, kDecodeTol) << name;
  }
}

TEST_P(Wan22VAEGolden, EncodeMatchesDiffusersAndTheOfficialCode) {
  const WanVAE& vae = vae22(GetParam());
  for (const char* name : kEncodeCases) {
    const Tensor x = golden22(std::string(name) + ".sample");
    const WanVAEEncoding enc = vae.encode(x);
    const WanVAEEncoding whole = vae.encode_whole_sequence(x);
    const double e_mean = rel_err(enc.mean, golden22(std::string(name) + ".latent_mean"));
    const double e_logvar = rel_err(enc.logvar, golden22(std::string(name) + ".latent_logvar"));
    const double e_off = rel_err(enc.mean, golden22(std::string(name) + ".official"));
    const double e_whole = rel_err(whole.mean, golden22(std::string(name) + ".latent_mean"));
    std::printf("[%s] %-13s %s -> %s: mean %.2e, logvar %.2e, vs official %.2e, whole-sequence %.2e\n",
                GetParam().c_str(), name, x.shape().str().c_str(), enc.mean.shape().str().c_str(), e_mean, e_logvar,
                e_off, e_whole);
    EXPECT_LE(e_mean, kEncodeTol) << name;
    EXPECT_LE(e_logvar, kEncodeTol) << name;
    EXPECT_LE(e_off, kEncodeTol) << name;
    EXPECT_LE(e_whole, kEncodeTol) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, Wan22VAEGolden, ::testing::Values("original", "diffusers"),
                         [](const auto& p) { return p.param; });

TEST(Wan22VAE, StreamsOneThenFourFramesPerLatentFrame) {
  const WanVAE& vae = vae22("diffusers");
  const Tensor z = golden22("decode_t4.latents");
  std::vector<int64_t> sizes;
  std::vector<Tensor> got;
  vae.decode_stream(z, [&](const Tensor& f) {
    sizes.push_back(f.size(2));
    got.push_back(f);
  });
  EXPECT_EQ(sizes, (std::vector<int64_t>{1, 4, 4, 4}));
  EXPECT_LE(rel_err(ops::concat(got, 2), golden22("decode_t4.sample")), kDecodeTol);
}

TEST(Wan22VAE, TiledDecodeMatchesDiffusers) {
  // diffusers blends the tiles before the unpatchify, in the decoder's 8x grid.
  const WanVAE& vae = vae22("original");
  WanVAETiling t;
  t.enabled = true;
  t.tile_h = 2, t.tile_w = 3, t.stride_h = 1, t.stride_w = 2;
  const Tensor got = vae.decode(golden22("decode_t2.latents"), t);
  const double e = rel_err(got, golden22("decode_t2_tiled.sample"));
  std::printf("tiled decode_t2 vs diffusers tiled_decode: %.2e\n", e);
  EXPECT_LE(e, kDecodeTol);
}

TEST(Wan22VAE, PresetIsTheReleasedVAE) {
  const WanVAEConfig p = WanVAEConfig::preset("wan2.2-vae");
  EXPECT_EQ(p.z_dim, 48);
  EXPECT_EQ(p.base_dim, 160);
  EXPECT_EQ(p.decoder_base_dim, 256);
  EXPECT_EQ(p.spatial_factor(), 16);
  EXPECT_EQ(p.video_channels(), 3);
  // The golden config carries the 48 statistics of the official Wan2_2_VAE.
  EXPECT_EQ(p.latents_mean, config22().latents_mean);
  EXPECT_EQ(p.latents_std, config22().latents_std);
  // The real model's names and shapes (tools/golden/gen_wan22_vae_goldens.py, from diffusers
  // on the meta device, checked there against the official module's names).
  std::ifstream f(dir22() + "/wan2.2_vae_keys.txt");
  ASSERT_TRUE(f.good());
  std::map<std::string, std::pair<std::string, Shape>> want;
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string o, d, dims;
    ss >> o >> d >> dims;
    std::vector<int64_t> shape;
    std::istringstream ds(dims);
    for (std::string x; std::getline(ds, x, ',');) shape.push_back(std::stoll(x));
    want[o] = {d, Shape(shape)};
  }
  const auto table = wan_vae_key_table(p);
  EXPECT_EQ(table.size(), want.size());
  int64_t params = 0;
  for (const WanVAEKeyEntry& e : table) {
    params += e.shape.numel();
    const auto it = want.find(e.original);
    ASSERT_NE(it, want.end()) << e.original;
    EXPECT_EQ(e.diffusers, it->second.first) << e.original;
    EXPECT_EQ(e.shape, it->second.second) << e.original;
  }
  std::printf("Wan2.2 VAE: %zu tensors, %lld parameters\n", table.size(), static_cast<long long>(params));
}

// ---- the rearrangements against index loops (bit-exact: data movement) --------------------

Tensor random_tensor(const Shape& s, uint64_t seed) { return randn_philox(s, seed); }

TEST(Wan22VAE, PatchifyPutsTheColumnOffsetBeforeTheRowOffset) {
  for (const auto& shape : {Shape{1, 3, 1, 4, 6}, Shape{2, 3, 3, 6, 2}, Shape{1, 2, 2, 10, 14}}) {
    const Tensor x = random_tensor(shape, 7);
    const Tensor y = vae_patchify(x, 2);
    const int64_t B = shape[0], C = shape[1], F = shape[2], H = shape[3], W = shape[4], h = H / 2, w = W / 2;
    ASSERT_EQ(y.shape(), (Shape{B, C * 4, F, h, w}));
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t kx = 0; kx < 2; ++kx)
          for (int64_t ky = 0; ky < 2; ++ky)
            for (int64_t f = 0; f < F; ++f)
              for (int64_t i = 0; i < h; ++i)
                for (int64_t j = 0; j < w; ++j)
                  ASSERT_EQ(py[((((b * C * 4 + c * 4 + kx * 2 + ky) * F + f) * h + i) * w + j)],
                            px[(((b * C + c) * F + f) * H + 2 * i + ky) * W + 2 * j + kx]);
    EXPECT_EQ(rel_err(vae_unpatchify(y, 2), x), 0.0);
  }
}

TEST(Wan22VAE, SpaceToChannelsOrderAndInverse) {
  for (const auto& [shape, ft, fs] : {std::tuple{Shape{1, 2, 2, 4, 6}, 2, 2}, std::tuple{Shape{2, 3, 3, 2, 4}, 1, 2},
                                      std::tuple{Shape{1, 1, 4, 6, 2}, 2, 1}}) {
    const Tensor x = random_tensor(shape, 11);
    const Tensor y = space_to_channels(x, ft, fs);
    const int64_t B = shape[0], C = shape[1], T = shape[2], H = shape[3], W = shape[4];
    const int64_t t = T / ft, h = H / fs, w = W / fs, CF = C * ft * fs * fs;
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t kt = 0; kt < ft; ++kt)
          for (int64_t ky = 0; ky < fs; ++ky)
            for (int64_t kx = 0; kx < fs; ++kx)
              for (int64_t i = 0; i < t; ++i)
                for (int64_t yy = 0; yy < h; ++yy)
                  for (int64_t xx = 0; xx < w; ++xx) {
                    const int64_t ch = ((c * ft + kt) * fs + ky) * fs + kx;
                    ASSERT_EQ(py[(((b * CF + ch) * t + i) * h + yy) * w + xx],
                              px[(((b * C + c) * T + i * ft + kt) * H + yy * fs + ky) * W + xx * fs + kx]);
                  }
    EXPECT_EQ(rel_err(channels_to_space(y, ft, fs), x), 0.0);
  }
}

TEST(Wan22VAE, ShortcutsAverageAndRepeat) {
  // AvgDown3D on one frame pads a zero frame in front: the mean halves.
  const Tensor x = random_tensor(Shape{1, 2, 1, 2, 2}, 3);
  const AvgDownShortcut down{2, 4, 2, 2};  // factor 8, groups of 4
  const Tensor y = down.forward(x);
  ASSERT_EQ(y.shape(), (Shape{1, 4, 1, 1, 1}));
  // Channel ((c*2 + kt)*2 + ky)*2 + kx: group o = c*2 + kt holds the 4 pixels of (c, kt).
  const float* px = x.data<float>();
  for (int64_t c = 0; c < 2; ++c) {
    double s = 0;
    for (int i = 0; i < 4; ++i) s += px[c * 4 + i];
    EXPECT_EQ(y.data<float>()[c * 2 + 0], 0.0f);  // the padding frame
    EXPECT_NEAR(y.data<float>()[c * 2 + 1], s / 4, 1e-6);
  }
  // DupUp3D repeats, spreads, and drops the leading frame on the first chunk.
  const DupUpShortcut up{4, 2, 2, 2};  // repeats 2*8/4 = 4
  const Tensor z = random_tensor(Shape{1, 4, 2, 1, 1}, 5);
  const Tensor full = up.forward(z, false), first = up.forward(z, true);
  ASSERT_EQ(full.shape(), (Shape{1, 2, 4, 2, 2}));
  ASSERT_EQ(first.shape(), (Shape{1, 2, 3, 2, 2}));
  EXPECT_EQ(rel_err(ops::slice(full, 2, 1, 4), first), 0.0);
  // Output (o, 2t + kt, ky, kx) is input channel (((o*2 + kt)*2 + ky)*2 + kx) / 4 at time t.
  const float* pz = z.data<float>();
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t ky = 0; ky < 2; ++ky)
        for (int64_t kx = 0; kx < 2; ++kx)
          EXPECT_EQ(full.data<float>()[((o * 4 + t) * 2 + ky) * 2 + kx],
                    pz[((((o * 2 + t % 2) * 2 + ky) * 2 + kx) / 4) * 2 + t / 2]);
}

}  // namespace
}  // namespace t2v
