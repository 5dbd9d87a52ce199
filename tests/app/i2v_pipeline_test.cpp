// Image-to-video end to end against the official Wan2.1 WanI2V.generate and
// WanFLF2V.generate (tools/golden/gen_i2v_pipeline_golden.py): `t2v generate --image`
// on tiny random I2V / FLF2V models, with the noise the reference drew, must give its
// frames; the conditioning (mask + image latents) and the CLIP features match the
// reference's; bad images and model/image mismatches are one-line errors with
// nothing written.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "app/i2v_conditioning.h"
#include "app/image_input.h"
#include "cli_test_util.h"
#include "core/safetensors.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(T2V_TEST_DATA_DIR) + "/i2v";

const nlohmann::json& golden_index() {
  static const nlohmann::json j = [] {
    std::ifstream f(kData + "/golden.json");
    return nlohmann::json::parse(f);
  }();
  return j;
}

const SafetensorsFile& goldens() {
  static SafetensorsFile f(kData + "/golden.safetensors");
  return f;
}

nlohmann::json golden_case(const std::string& name) {
  for (const auto& c : golden_index()["cases"])
    if (c["name"] == name) return c;
  ADD_FAILURE() << "no golden case " << name;
  return {};
}

// `t2v generate` with the case's settings, its noise and its images.
RunResult generate(const nlohmann::json& c, const TempDir& dir, std::vector<std::string> extra = {}) {
  const std::string name = c["name"];
  save_safetensors(dir.file("noise.safetensors"), {{"noise", goldens().get(name + ".noise").clone()}});
  std::vector<std::string> args = {"generate", "--model", kData + "/" + std::string(c["model"]), "-p", c["prompt"],
                                   "--image", kData + "/first.png", "--size", c["size"], "--frames",
                                   std::to_string(int(c["frames"])), "--steps", std::to_string(int(c["steps"])),
                                   "--cfg", fmt::format("{}", double(c["cfg"])), "--shift",
                                   fmt::format("{}", double(c["shift"])), "--sampler", c["solver"], "--schedule",
                                   "reference", "--noise", dir.file("noise.safetensors"), "--seed", "1",
                                   "-o", dir.file("out.mp4"), "--dump-frames", dir.file("frames.safetensors")};
  if (!c["negative"].is_null()) args.insert(args.end(), {"-n", c["negative"]});
  if (c["type"] == "flf2v") args.insert(args.end(), {"--last-image", kData + "/last.png"});
  if (c.contains("dit")) args.insert(args.end(), {"--dit", kData + "/" + std::string(c["dit"])});
  args.insert(args.end(), extra.begin(), extra.end());
  return run_t2v(args);
}

void check_frames(const std::string& name) {
  const nlohmann::json c = golden_case(name);
  TempDir dir;
  const RunResult r = generate(c, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  // The size is the official rule's, from the 50x30 input under the 48x32 area budget.
  EXPECT_NE(r.err.find(fmt::format("video {}x{}", int(c["width"]), int(c["height"]))), std::string::npos) << r.err;
  SafetensorsFile ours(dir.file("frames.safetensors"));
  const Tensor got = ours.get("frames");
  const Tensor want = goldens().get(name + ".frames");
  ASSERT_EQ(got.shape(), want.shape()) << name;
  const FrameDiff d = frame_diff(got.to_vector(), want.to_vector());
  std::printf("  %-22s frames %s: max|err| %.3g, PSNR %.1f dB\n", name.c_str(), want.shape().str().c_str(), d.max_abs,
              d.psnr);
  // Measured max|err| 3.6e-6 / 4.1e-6 / 9.7e-6 and 128.9 / 126.8 / 123.6 dB (i2v unipc, i2v dpm++,
  // flf2v); the acceptance bound is 1e-3 and 60 dB.
  EXPECT_LE(d.max_abs, 5e-5) << name;
  EXPECT_GE(d.psnr, 110.0) << name;
  Mp4Reader reader;
  reader.open(dir.file("out.mp4"));
  EXPECT_EQ(reader.info().width, int(c["width"]));
  EXPECT_EQ(reader.info().height, int(c["height"]));
  const nlohmann::json meta = nlohmann::json::parse(reader.info().metadata.at("t2v"));
  EXPECT_EQ(meta["image"], kData + "/first.png");
  if (c["negative"].is_null()) {  // the reference's default for the model type
    EXPECT_EQ(meta["negative_prompt"],
              golden_index()[c["type"] == "flf2v" ? "flf2v_default_negative" : "i2v_default_negative"]);
  }
}

TEST(I2VPipeline, UniPCDiffusersFolderCustomNegativeMatchesWanI2V) { check_frames("i2v_unipc_diffusers"); }
TEST(I2VPipeline, DpmComfySingleFilesDefaultNegativeMatchesWanI2V) { check_frames("i2v_dpm_comfy"); }
TEST(I2VPipeline, FirstLastFrameMatchesWanFLF2V) { check_frames("flf2v_unipc"); }

// On the test device (the CPU kernels behind the device interface): --dtype f32 gives
// the CPU's frames bit for bit (CLIP, the VAE encode of the conditioning and the DiT's
// image branch included); --dtype bf16 (umT5, CLIP and the DiT in bf16, the VAE in
// fp32) stays near the reference's fp32 frames.
TEST(I2VPipeline, OnTheTestDevice) {
  for (const char* name : {"i2v_unipc_diffusers", "flf2v_unipc"}) {
    const nlohmann::json c = golden_case(name);
    TempDir cpu, f32, bf16;
    ASSERT_EQ(generate(c, cpu).code, 0);
    const RunResult a = generate(c, f32, {"--device", "test", "--dtype", "f32"});
    ASSERT_EQ(a.code, 0) << a.err;
    const RunResult b = generate(c, bf16, {"--device", "test", "--dtype", "bf16"});
    ASSERT_EQ(b.code, 0) << b.err;
    const auto ref = SafetensorsFile(cpu.file("frames.safetensors")).get("frames").to_vector();
    EXPECT_EQ(SafetensorsFile(f32.file("frames.safetensors")).get("frames").to_vector(), ref) << name;
    const FrameDiff d = frame_diff(SafetensorsFile(bf16.file("frames.safetensors")).get("frames").to_vector(),
                           goldens().get(std::string(name) + ".frames").to_vector());
    std::printf("  %-22s test device bf16 vs the reference: max|err| %.3g, PSNR %.1f dB\n", name, d.max_abs, d.psnr);
    // Measured 57.2 dB (i2v) and 51.0 dB (flf2v, 81 frames); 5x the worst error is -14 dB.
    EXPECT_GE(d.psnr, 37.0) << name;
    EXPECT_LT(d.psnr, 200.0) << name << ": bf16 must change the frames";
  }
}

// The conditioning and the CLIP features the reference fed its DiT.
TEST(I2VConditioning, MaskLatentsAndClipFeaturesMatchTheReference) {
  const WanVAEConfig vcfg = WanVAEConfig::resolve("", kData + "/diffusers/vae");
  const WanVAE vae = WanVAE::load(kData + "/diffusers/vae", vcfg);
  const ClipVisionConfig ccfg = ClipVisionConfig::resolve("", kData + "/diffusers/image_encoder");
  const ClipVisionEncoder clip = ClipVisionEncoder::load(kData + "/diffusers/image_encoder", ccfg);
  const Tensor first = rgb_image_to_tensor(load_rgb_image(kData + "/first.png"));
  const Tensor last = rgb_image_to_tensor(load_rgb_image(kData + "/last.png"));
  for (const char* name : {"i2v_unipc_diffusers", "flf2v_unipc"}) {
    const nlohmann::json c = golden_case(name);
    const bool flf = c["type"] == "flf2v";
    const I2VSize size = i2v_output_size(48 * 32, 50, 30);
    EXPECT_EQ(size.width, int(c["width"]));
    EXPECT_EQ(size.height, int(c["height"]));
    const I2VCondition cond = i2v_condition(clip, vae, first, flf ? &last : nullptr, int(c["frames"]), size);
    const Tensor y_ref = goldens().get(std::string(name) + ".y");  // [20, T, h, w]
    const Tensor y = cond.y.reshape(y_ref.shape());
    // The mask is exact; the latents are a VAE encode (fp32).
    const auto yv = y.to_vector(), rv = y_ref.to_vector();
    const size_t mask_n = static_cast<size_t>(4 * y_ref.size(1) * y_ref.size(2) * y_ref.size(3));
    for (size_t i = 0; i < mask_n; ++i) ASSERT_EQ(yv[i], rv[i]) << name << " mask element " << i;
    double e = 0, m = 0;
    for (size_t i = mask_n; i < yv.size(); ++i) e = std::max(e, std::fabs(double(yv[i]) - rv[i])), m = std::max(m, std::fabs(double(rv[i])));
    std::printf("  %-22s image latents rel %.3e\n", name, e / m);
    EXPECT_LE(e / m, 5e-6) << name;  // measured 9.5e-7 / 8.4e-7; acceptance 1e-4 relative
    const Tensor f_ref = goldens().get(std::string(name) + ".clip_fea");  // [n, 17, 80]
    const auto fv = cond.features.reshape(f_ref.shape()).to_vector(), frv = f_ref.to_vector();
    e = 0, m = 0;
    for (size_t i = 0; i < fv.size(); ++i) e = std::max(e, std::fabs(double(fv[i]) - frv[i])), m = std::max(m, std::fabs(double(frv[i])));
    std::printf("  %-22s CLIP features rel %.3e\n", name, e / m);
    EXPECT_LE(e / m, 2e-6) << name;  // measured 3.1e-7 / 3.9e-7
  }
}

TEST(I2VConditioning, MaskFoldsFrameZeroFourTimes) {
  const Tensor m = i2v_mask(9, 1, 1, false);  // [4, 3, 1, 1]
  EXPECT_EQ(m.to_vector(), (std::vector<float>{1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0}));
  const Tensor f = i2v_mask(9, 1, 1, true);  // the last latent frame: channel 3 only
  EXPECT_EQ(f.to_vector(), (std::vector<float>{1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1}));
}

TEST(I2VConditioning, OutputSizeFollowsTheReference) {
  // 832x480 budget: a 4:3 image gives 720x544? No: lat_h = ⌊⌊√(399360·0.75)/8⌋/2⌋·2 = 68, lat_w = 90.
  I2VSize s = i2v_output_size(832 * 480, 1024, 768);
  EXPECT_EQ(s.width, 720);
  EXPECT_EQ(s.height, 544);
  // Same aspect: not quite the budget. In float64 399360 * (480 / 832) is just under 230400,
  // its root just under 480, and the floor divisions give lat_h 58 (the official code's 832x464).
  s = i2v_output_size(832 * 480, 832, 480);
  EXPECT_EQ(s.width, 832);
  EXPECT_EQ(s.height, 464);
  s = i2v_output_size(1280 * 720, 720, 1280);  // portrait
  EXPECT_EQ(s.width, 720);
  EXPECT_EQ(s.height, 1280);
  EXPECT_THROW(i2v_output_size(48 * 32, 16, 16000), Error);  // a side of 0
}

// ---- bad inputs: one line, the right code, nothing written -----------------------------------
struct Refusal {
  int code;
  std::string needle;
};

void expect_refused(const std::vector<std::string>& extra, const Refusal& want, const std::string& model = "diffusers",
                    const std::string& frames = "9") {
  TempDir dir;
  std::vector<std::string> args = {"generate", "--model", kData + "/" + model, "-p", "a ball", "--size", "48x32",
                                   "--frames", frames, "--steps", "1", "--seed", "1", "-o", dir.file("x.mp4")};
  args.insert(args.end(), extra.begin(), extra.end());
  const RunResult r = run_t2v(args);
  EXPECT_EQ(r.code, want.code) << r.err;
  EXPECT_NE(r.err.find(want.needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  EXPECT_FALSE(fs::exists(dir.file("x.mp4")));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.path().filename() != "img.png";
  EXPECT_EQ(files, 0u) << "something was written";
}

TEST(I2VBadInput, MissingAndUnreadableImages) {
  TempDir d;
  expect_refused({"--image", d.file("none.png")}, {66, "does not exist"});
  write_text(d.file("text.png"), "not an image at all");
  expect_refused({"--image", d.file("text.png")}, {65, "is not a PNG, JPEG, WebP or BMP image"});
  // A real PNG header cut short after the size: decoding fails.
  cv::Mat img(32, 32, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<uint8_t> png;
  cv::imencode(".png", img, png);
  png.resize(60);
  std::ofstream(d.file("cut.png"), std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  // libpng's own message joins ours on the one line.
  expect_refused({"--image", d.file("cut.png")}, {65, "cannot be decoded (corrupt or truncated file?) [libpng error"});
  // A JPEG cut in its scan data: libjpeg fills it with grey, PIL refuses it; so do we.
  std::vector<uint8_t> jpg;
  cv::Mat noise(64, 64, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::imencode(".jpg", noise, jpg);
  jpg.resize(jpg.size() / 2);
  std::ofstream(d.file("cut.jpg"), std::ios::binary).write(reinterpret_cast<const char*>(jpg.data()), jpg.size());
  expect_refused({"--image", d.file("cut.jpg")}, {65, "the JPEG data cannot be decoded"});
  fs::create_directories(d.file("dir.png"));
  expect_refused({"--image", d.file("dir.png")}, {66, "is a folder"});
}

// A FIFO or a device would block or never end; they are refused before any read.
// Symlinks are followed (an input is only read); a dangling one does not exist.
TEST(I2VBadInput, FifoDeviceAndSymlinkPaths) {
  TempDir d;
  ASSERT_EQ(::mkfifo(d.file("fifo.png").c_str(), 0600), 0);
  expect_refused({"--image", d.file("fifo.png")}, {66, "is not a regular file (a FIFO, device or socket)"});
  expect_refused({"--image", "/dev/zero"}, {66, "is not a regular file"});
  fs::create_symlink(d.file("nowhere.png"), d.file("dangling.png"));
  expect_refused({"--image", d.file("dangling.png")}, {66, "does not exist"});
  fs::create_symlink(d.file("loop_b.png"), d.file("loop_a.png"));
  fs::create_symlink(d.file("loop_a.png"), d.file("loop_b.png"));
  expect_refused({"--image", d.file("loop_a.png")}, {66, "cannot be read: Too many levels of symbolic links"});
  fs::create_symlink(kData + "/first.png", d.file("link.png"));
  const InputImage via_link = load_rgb_image(d.file("link.png"));
  const InputImage direct = load_rgb_image(kData + "/first.png");
  EXPECT_EQ(via_link.width, direct.width);
  EXPECT_EQ(via_link.height, direct.height);
  EXPECT_EQ(via_link.rgb, direct.rgb);
}

TEST(I2VBadInput, FileAboveTheByteLimit) {
  ImageLimits limits;
  limits.max_file_bytes = 1024;  // first.png is 3809 bytes
  try {
    load_rgb_image(kData + "/first.png", "--image", limits);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), 65);
    EXPECT_NE(std::string(e.what()).find("above the limit of 0 MB for an input image"), std::string::npos)
        << e.what();
  }
}

TEST(I2VBadInput, TinyAndHugeImages) {
  TempDir d;
  cv::imwrite(d.file("one.png"), cv::Mat(1, 1, CV_8UC3, cv::Scalar(1, 2, 3)));
  expect_refused({"--image", d.file("one.png")}, {65, "is 1x1 pixels; an input image must be at least 16x16"});
  // 30000 x 30000 declared in the header: refused before any pixel is decoded.
  std::vector<uint8_t> png;
  cv::imencode(".png", cv::Mat(16, 16, CV_8UC3, cv::Scalar(0)), png);
  for (int at : {16, 20}) {
    png[at] = 0, png[at + 1] = 0, png[at + 2] = 30000 >> 8, png[at + 3] = 30000 & 0xFF;
  }
  std::ofstream(d.file("huge.png"), std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  expect_refused({"--image", d.file("huge.png")}, {65, "is 30000x30000 pixels, above the limit"});
}

TEST(I2VBadInput, ModelAndImagesMustGoTogether) {
  const std::string t2v_model = std::string(T2V_TEST_DATA_DIR) + "/pipeline/tiny_wan";
  {  // a text-to-video transformer given --image
    TempDir dir;
    const RunResult r = run_t2v({"generate", "--model", t2v_model, "-p", "a ball", "--size", "48x32", "--frames", "9",
                                 "--steps", "1", "--seed", "1", "--image", kData + "/first.png", "-o",
                                 dir.file("x.mp4")});
    EXPECT_EQ(r.code, 64) << r.err;
    EXPECT_NE(r.err.find("is a text-to-video model"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("x.mp4")));
  }
  expect_refused({}, {64, "it needs an input image"});  // an I2V transformer without --image
  expect_refused({"--image", kData + "/first.png", "--last-image", kData + "/last.png"},
                 {64, "has no first-last-frame weights"});  // --last-image without FLF2V weights
  expect_refused({"--last-image", kData + "/last.png"}, {64, "--last-image needs --image"});
  // FLF2V: exactly 81 frames, and both frames of one size.
  expect_refused({"--dit", kData + "/flf2v/flf2v_tiny.safetensors", "--image", kData + "/first.png", "--last-image",
                  kData + "/last.png"},
                 {64, "runs at exactly 81 frames"}, "comfy");
  TempDir d;
  cv::imwrite(d.file("small.png"), cv::Mat(20, 20, CV_8UC3, cv::Scalar(1, 2, 3)));
  expect_refused({"--dit", kData + "/flf2v/flf2v_tiny.safetensors", "--image", kData + "/first.png", "--last-image",
                  d.file("small.png")},
                 {65, "the two frames must have one size"}, "comfy", "81");
}

TEST(I2VBadInput, MissingOrPickledImageEncoder) {
  const std::string comfy = kData + "/comfy/";
  const std::vector<std::string> parts = {"--dit", comfy + "wan2.1_i2v_tiny.safetensors", "--t5",
                                          comfy + "umt5_tiny.safetensors", "--vae",
                                          comfy + "wan_2.1_vae_tiny.safetensors", "--tokenizer",
                                          kData + "/diffusers/tokenizer", "--image", kData + "/first.png"};
  TempDir dir;
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"generate", "-p", "a ball", "--size", "48x32", "--frames", "9", "--steps", "1",
                                     "--seed", "1", "-o", dir.file("x.mp4")};
    args.insert(args.end(), parts.begin(), parts.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return run_t2v(args);
  };
  RunResult r = run({});  // single files and no CLIP
  EXPECT_EQ(r.code, 66) << r.err;
  EXPECT_NE(r.err.find("needs the CLIP image encoder, but none was found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--clip clip_vision_h.safetensors"), std::string::npos) << r.err;
  // The official open_clip checkpoint is a pickle: refused with the conversion command.
  const char pickle[] = "\x80\x02}q\x00(X\x07\x00\x00\x00visual.";  // protocol 2, a dict
  std::ofstream(dir.file("clip.pth"), std::ios::binary) << std::string(pickle, sizeof(pickle) - 1);
  r = run({"--clip", dir.file("clip.pth")});
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("pickle checkpoints can run arbitrary code"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("convert it once with: python3 -c"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("x.mp4")));
}

TEST(I2VBadInput, ClipWidthMustMatchTheTransformer) {
  // The 64-wide CLIP of tests/data/image_encoder beside the 80-wide one this DiT takes.
  expect_refused({"--image", kData + "/first.png", "--clip",
                  std::string(T2V_TEST_DATA_DIR) + "/image_encoder/tiny_clip"},
                 {65, "is 64 wide, but the transformer's image embedder takes 80-wide"});
}

// A whole JPEG (with an EXIF-like thumbnail's end marker before its scan) loads; the
// same file cut in its scan data is refused (the cut test is in I2VBadInput).
TEST(ImageInput, WholeJpegLoadsAsOpenCvDecodesIt) {
  TempDir d;
  cv::Mat img(40, 56, CV_8UC3);
  cv::randu(img, 0, 255);
  std::vector<uint8_t> jpg;
  cv::imencode(".jpg", img, jpg);
  // An APP1 segment holding FF D9 right after SOI: the end must be looked for after the scan.
  const std::vector<uint8_t> app1 = {0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00};
  jpg.insert(jpg.begin() + 2, app1.begin(), app1.end());
  std::ofstream(d.file("a.jpg"), std::ios::binary).write(reinterpret_cast<const char*>(jpg.data()), jpg.size());
  const InputImage a = load_rgb_image(d.file("a.jpg"));
  const cv::Mat want = cv::imread(d.file("a.jpg"), cv::IMREAD_COLOR);
  ASSERT_EQ(a.width, 56);
  ASSERT_EQ(a.height, 40);
  for (int i = 0; i < 40 * 56; ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(a.rgb[i * 3 + c], want.data[i * 3 + 2 - c]);
  jpg.resize(jpg.size() - 200);
  std::ofstream(d.file("b.jpg"), std::ios::binary).write(reinterpret_cast<const char*>(jpg.data()), jpg.size());
  EXPECT_THROW(load_rgb_image(d.file("b.jpg")), Error);
}

// Grayscale, alpha and palette PNGs become RGB as PIL's convert("RGB") makes them.
TEST(ImageInput, ConvertsLikePil) {
  TempDir d;
  cv::Mat gray(20, 24, CV_8UC1);
  cv::randu(gray, 0, 255);
  cv::imwrite(d.file("g.png"), gray);
  InputImage g = load_rgb_image(d.file("g.png"));
  ASSERT_EQ(g.width, 24);
  ASSERT_EQ(g.height, 20);
  for (int i = 0; i < 20 * 24; ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(g.rgb[i * 3 + c], gray.data[i]);
  cv::Mat bgra(18, 17, CV_8UC4);
  cv::randu(bgra, 0, 255);
  cv::imwrite(d.file("a.png"), bgra);
  InputImage a = load_rgb_image(d.file("a.png"));
  for (int i = 0; i < 18 * 17; ++i)  // alpha dropped, not composited
    for (int c = 0; c < 3; ++c) ASSERT_EQ(a.rgb[i * 3 + c], bgra.data[i * 4 + 2 - c]);
  cv::Mat g16(16, 16, CV_16UC1);
  for (int i = 0; i < 256; ++i) g16.at<uint16_t>(i) = static_cast<uint16_t>(i * 200);
  cv::imwrite(d.file("g16.png"), g16);
  InputImage h = load_rgb_image(d.file("g16.png"));  // PIL's I;16 -> RGB clips at 255
  for (int i = 0; i < 256; ++i) ASSERT_EQ(h.rgb[i * 3], std::min(255, i * 200));
  const Tensor t = rgb_image_to_tensor(a);
  EXPECT_EQ(t.shape(), (Shape{3, 18, 17}));
  EXPECT_FLOAT_EQ(t.data<float>()[0], (static_cast<float>(a.rgb[0]) / 255.0f - 0.5f) / 0.5f);
}

}  // namespace
}  // namespace t2v::test

namespace t2v::test {
namespace {

TEST(I2VInspect, NamesTheImageEncoderAndTheImageToVideoDiT) {
  RunResult r = run_t2v({"inspect", kData + "/comfy/clip_vision_tiny.safetensors"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("CLIP vision encoder (transformers layout"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("loads as it is"), std::string::npos) << r.out;
  r = run_t2v({"inspect", kData + "/comfy/wan2.1_i2v_tiny.safetensors"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("image-to-video"), std::string::npos) << r.out;
  r = run_t2v({"inspect", kData + "/flf2v/flf2v_tiny.safetensors"});
  EXPECT_NE(r.out.find("first-last-frame-to-video"), std::string::npos) << r.out;
}

TEST(I2VProbe, ClipVisionMatchesTheReference) {
  TempDir dir;
  const std::string data = std::string(T2V_TEST_DATA_DIR) + "/image_encoder";
  SafetensorsFile cases(data + "/cases.safetensors");
  save_safetensors(dir.file("in.safetensors"), {{"image", cases.get("one_23x31.image").clone()}});
  const RunResult r = run_t2v({"probe", "clip-vision", "--weights", data + "/tiny_clip", "--inputs",
                               dir.file("in.safetensors"), "--out", dir.file("out.safetensors")});
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile out(dir.file("out.safetensors"));
  const FrameDiff d = frame_diff(out.get("hidden_states").to_vector(), cases.get("one_23x31.features").to_vector());
  EXPECT_LE(d.max_abs, 1e-5);  // features are O(1); the golden test bounds them at 2e-6 relative
}

TEST(I2VBench, DryRunCountsTheImageTokens) {
  const RunResult r = run_t2v({"bench", "--model", "wan2.1-i2v-14b", "--dry-run", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["image_tokens"], 257);
  const RunResult t = run_t2v({"bench", "--model", "wan2.1-t2v-14b", "--dry-run", "--json"});
  EXPECT_GT(j["dit_step_flops"].get<double>(), nlohmann::json::parse(t.out)["dit_step_flops"].get<double>());
}

}  // namespace
}  // namespace t2v::test

namespace t2v::test {
namespace {

TEST(I2VBatch, ItemsTakeImagesAndTheGalleryShowsThem) {
  TempDir dir;
  std::filesystem::copy_file(kData + "/first.png", dir.file("in.png"));
  write_text(dir.file("list.jsonl"), "{\"prompt\": \"a ball\", \"id\": \"a\", \"image\": \"in.png\"}\n");
  RunResult r = run_t2v({"batch", dir.file("list.jsonl"), "--out-dir", dir.file("out"), "--model",
                         kData + "/diffusers", "--size", "48x32", "--frames", "5", "--steps", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.file("out/a.mp4")));
  r = run_t2v({"gallery", dir.file("out")});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = read_text(dir.file("out/index.html"));
  EXPECT_NE(html.find("<img class=\"input\""), std::string::npos) << html;
  EXPECT_NE(html.find("in.png"), std::string::npos);
  // A missing image fails the list before any model loads.
  write_text(dir.file("bad.jsonl"), "{\"prompt\": \"a ball\", \"image\": \"nope.png\"}\n");
  r = run_t2v({"batch", dir.file("bad.jsonl"), "--out-dir", dir.file("out2"), "--model", kData + "/diffusers"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nope.png is not a file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace t2v::test
