// `t2v serve` with image-to-video and step caching: input images sent as base64 data: URLs
// (JSON) or file parts (multipart, OpenAI's input_reference) render the frames `t2v generate
// --image` renders with the same settings; bad images are 400s naming the field; a `cache`
// job renders generate's `--cache` frames. Models: the tiny Wan2.1 I2V folder of
// tests/data/i2v and the default test model.
#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "app/json_fields.h"
#include "app/serve_request.h"
#include "core/data_url.h"
#include "serve_test_util.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kI2V = std::string(T2V_TEST_DATA_DIR) + "/i2v";

// An encoder written apart from the server's (app/serve_request.cpp), so a shared mistake
// cannot hide.
std::string base64(const std::string& b) {
  const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const unsigned n = (unsigned char)b[i] << 16 | (unsigned char)b[i + 1] << 8 | (unsigned char)b[i + 2];
    for (int s : {18, 12, 6, 0}) out += digits[n >> s & 63];
  }
  if (i + 1 == b.size()) {
    const unsigned n = (unsigned char)b[i] << 16;
    out += digits[n >> 18 & 63];
    out += digits[n >> 12 & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    const unsigned n = (unsigned char)b[i] << 16 | (unsigned char)b[i + 1] << 8;
    for (int s : {18, 12, 6}) out += digits[n >> s & 63];
    out += "=";
  }
  return out;
}

std::string png_url(const std::string& path) { return "data:image/png;base64," + base64(read_text(path)); }

void expect_400(const Reply& r, const std::string& param, const std::string& what) {
  EXPECT_EQ(r.status, 400) << what << ": " << r.body;
  const json j = r.json();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r.body;
  EXPECT_EQ(j["error"]["param"], param) << what << ": " << r.body;
  const std::string m = j["error"]["message"];
  EXPECT_EQ(m.find('\n'), std::string::npos) << what << ": " << m;
}

void expect_same_frames(const std::string& served, const std::string& generated, size_t frames) {
  const std::vector<std::vector<uint8_t>> a = mp4_frames(served), b = mp4_frames(generated);
  ASSERT_EQ(a.size(), frames);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i] == b[i]) << "frame " << i << " differs from generate's";
}

TEST(ServeDataUrl, DecodesBase64AndRefusesWhatIsNotOne) {
  EXPECT_EQ(data_url_bytes("data:text/plain;base64,SGVsbG8=", "image"), "Hello");
  EXPECT_EQ(data_url_bytes("data:;base64,SGk", "image"), "Hi");  // padding may be left out
  EXPECT_EQ(data_url_bytes(encode_data_url("image/png", std::string("\0\x01\xfe\xff", 4)), "image"),
            std::string("\0\x01\xfe\xff", 4));
  for (std::string n = ""; n.size() < 7; n += char('a' + n.size()))
    EXPECT_EQ(encode_data_url(";", n), "data:;;base64," + base64(n)) << n.size();
  for (const char* bad : {"/etc/passwd", "https://example.com/a.png", "data:image/png,abc",
                          "data:image/png;base64,ab$d", "data:image/png;base64,", "data:image/png;base64,QQ==QQ"}) {
    try {
      data_url_bytes(bad, "image");
      ADD_FAILURE() << bad << " was taken";
    } catch (const FieldError& e) {
      EXPECT_NE(e.message.find("\"image\""), std::string::npos) << e.message;
    }
  }
}

TEST(ServeImage, ImageJobsRenderGeneratesFramesAndBadImagesAre400) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"), {"--model", kI2V + "/diffusers"});
  const json req = {{"prompt", "a red ball rolling to the left"}, {"size", "48x32"}, {"frames", 5},
                    {"steps", 2},                                  {"seed", 11},     {"image", png_url(kI2V + "/first.png")}};
  const json v = submit(s, req);
  ASSERT_TRUE(v.is_object());
  const std::string id = v["id"];
  EXPECT_TRUE(fs::is_regular_file(dir.file("jobs") + "/" + id + "/image.png"));

  // The same image as an OpenAI multipart upload (input_reference).
  const std::string boundary = "t2v-image-form";
  std::string form;
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"prompt", "a red ball rolling to the left"}, {"size", "48x32"}, {"frames", "5"}, {"steps", "2"}, {"seed", "11"}})
    form += fmt::format("--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n", boundary, name, value);
  form += fmt::format(
      "--{}\r\nContent-Disposition: form-data; name=\"input_reference\"; filename=\"first.png\"\r\n"
      "Content-Type: image/png\r\n\r\n{}\r\n--{}--\r\n",
      boundary, read_text(kI2V + "/first.png"), boundary);
  const Reply mp = http_post(s, "/v1/videos", form, {}, "multipart/form-data; boundary=" + boundary);
  ASSERT_EQ(mp.status, 200) << mp.body;
  const std::string id2 = mp.json()["id"];

  const json done = poll_video(s, id, "completed", 300);
  const json done2 = poll_video(s, id2, "completed", 300);
  RunResult g = run_t2v({"generate", "--model", kI2V + "/diffusers", "-p", req["prompt"], "--image",
                         kI2V + "/first.png", "--size", "48x32", "--frames", "5", "--steps", "2", "--seed", "11", "-o",
                         dir.file("generated.mp4"), "-q"});
  ASSERT_EQ(g.code, 0) << g.err;
  for (const std::string& job : {id, id2}) {
    const Reply mp4 = http_get(s, "/v1/videos/" + job + "/content");
    ASSERT_EQ(mp4.status, 200);
    write_text(dir.file(job + ".mp4"), mp4.body);
    expect_same_frames(dir.file(job + ".mp4"), dir.file("generated.mp4"), 5);
  }

  // Bad images: named in a 400 before anything is queued.
  json bad = req;
  bad["image"] = kI2V + "/first.png";  // a path: the server reads no client-named files
  expect_400(http_post(s, "/v1/videos", bad.dump()), "image", "a path");
  bad["image"] = "data:image/png;base64,not base64!";
  expect_400(http_post(s, "/v1/videos", bad.dump()), "image", "not base64");
  bad["image"] = "data:image/png;base64," + base64("GIF89a, not a PNG at all");
  expect_400(http_post(s, "/v1/videos", bad.dump()), "image", "not an image");
  bad["image"] = "data:image/png;base64," + base64(read_text(kI2V + "/first.png").substr(0, 20));
  expect_400(http_post(s, "/v1/videos", bad.dump()), "image", "a cut-off header");
  bad["image"] = 7;
  expect_400(http_post(s, "/v1/videos", bad.dump()), "image", "a number");
  std::string wrong_part = fmt::format(
      "--{0}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
      "--{0}\r\nContent-Disposition: form-data; name=\"mask\"; filename=\"a.png\"\r\n"
      "Content-Type: image/png\r\n\r\nPNG\r\n--{0}--\r\n",
      boundary);
  expect_400(http_post(s, "/v1/videos", wrong_part, {}, "multipart/form-data; boundary=" + boundary), "mask",
             "a file part that is no image field");

  // Images the served model does not take, or none where it needs one.
  json flf = req;
  flf["last_image"] = png_url(kI2V + "/last.png");
  expect_400(http_post(s, "/v1/videos", flf.dump()), "last_image", "a last frame for an I2V model");
  json none = req;
  none.erase("image");
  expect_400(http_post(s, "/v1/videos", none.dump()), "image", "no image for an I2V model");
  json both = req;
  both["input_reference"] = req["image"];
  expect_400(http_post(s, "/v1/videos", both.dump()), "input_reference", "image and input_reference");
  EXPECT_EQ(s.stop(SIGTERM), 0) << s.child().err();
}

TEST(ServeImage, CacheJobsRenderGeneratesCachedFramesAndTextModelsTakeNoImage) {
  TempDir dir;
  ServeProcess s(dir.file("jobs"));
  const json req = {{"prompt", "a red ball"}, {"size", "32x32"}, {"frames", 5},
                    {"steps", 8},             {"seed", 3},       {"cache", "first-block:0.2"}};
  const json v = submit(s, req);
  EXPECT_EQ(v["cache"], "first-block:0.2") << v.dump();
  poll_video(s, v["id"], "completed", 120);
  const Reply mp4 = http_get(s, "/v1/videos/" + v["id"].get<std::string>() + "/content");
  ASSERT_EQ(mp4.status, 200);
  write_text(dir.file("served.mp4"), mp4.body);
  RunResult g = run_t2v({"generate", "--model", test_model_dir(), "-p", "a red ball", "--size", "32x32", "--frames",
                         "5", "--steps", "8", "--seed", "3", "--cache", "first-block:0.2", "-o",
                         dir.file("generated.mp4"), "-q"});
  ASSERT_EQ(g.code, 0) << g.err;
  expect_same_frames(dir.file("served.mp4"), dir.file("generated.mp4"), 5);
  json bad = req;
  bad["cache"] = "magic";
  expect_400(http_post(s, "/v1/videos", bad.dump()), "cache", "an unknown cache");
  // A text-to-video model takes no image.
  json image = req;
  image.erase("cache");
  image["input_reference"] = png_url(kI2V + "/first.png");
  expect_400(http_post(s, "/v1/videos", image.dump()), "input_reference", "an image for a T2V model");
  EXPECT_EQ(s.stop(SIGTERM), 0) << s.child().err();
}

}  // namespace
}  // namespace t2v::test
