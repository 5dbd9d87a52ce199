// `t2v batch` input checks (docs/bad_inputs.md #36-41): every bad line is reported as file:line
// before any model is loaded. --model points at nothing, so a check that ran after the
// model lookup would exit 66 instead of 65 and fail these tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "app/batch.h"
#include "app/gallery.h"
#include "app/sha256.h"
#include "cli_test_util.h"
#include "diffusion/lora.h"
#include "core/error.h"

namespace t2v::test {
namespace {

const std::vector<std::string> kNoModel = {"--model", "/nonexistent/model"};

RunResult run_list(const TempDir& dir, const std::string& text, const std::vector<std::string>& extra = {}) {
  write_text(dir.file("list.jsonl"), text);
  std::vector<std::string> args = {"batch", dir.file("list.jsonl"), "--out-dir", dir.file("out")};
  for (const auto& s : kNoModel) args.push_back(s);
  for (const auto& s : extra) args.push_back(s);
  return run_t2v(args);
}

struct BadList {
  const char* name;
  std::string text;
  std::string expect;  // in stderr, after "list.jsonl:"
};

TEST(BatchValidation, EachBadLineIsReportedAsFileLineBeforeAnyModelLoads) {
  const std::string ok = "{\"prompt\": \"a red ball\"}\n";
  const std::string long_name(230, 'a');
  const std::vector<BadList> cases = {
      {"invalid json", ok + "{\"prompt\": \"x\",}\n", "list.jsonl:2: invalid JSON"},
      {"not an object", "[\"a red ball\"]\n", "list.jsonl:1: expected a JSON object"},
      {"missing prompt", "{\"id\": \"a\"}\n", "list.jsonl:1: missing \"prompt\""},
      {"prompt type", "{\"prompt\": 5}\n", "list.jsonl:1: \"prompt\" must be a string, not an integer"},
      {"steps type", "{\"prompt\": \"x\", \"steps\": \"10\"}\n", "list.jsonl:1: \"steps\" must be an integer"},
      {"cfg type", "{\"prompt\": \"x\", \"cfg\": true}\n", "list.jsonl:1: \"cfg\" must be a number"},
      {"negative seed", "{\"prompt\": \"x\", \"seed\": -1}\n", "list.jsonl:1: \"seed\" must be 0 .. 2^64-1"},
      {"unknown field", "{\"prompt\": \"x\", \"promt\": \"y\"}\n", "list.jsonl:1: unknown field \"promt\""},
      {"invalid utf-8", ok + ok + "{\"prompt\": \"a\xff\"}\n", "list.jsonl:3: invalid UTF-8 at byte 13"},
      {"bad size", "{\"prompt\": \"x\", \"size\": \"33x32\"}\n", "list.jsonl:1:"},
      {"duplicate id", "{\"prompt\": \"x\", \"id\": \"A\"}\n{\"prompt\": \"y\", \"id\": \"a\"}\n",
       "list.jsonl:2: duplicate id \"a\": line 1 has \"A\""},
      {"duplicate output", "{\"prompt\": \"x\", \"output\": \"V.mp4\"}\n{\"prompt\": \"y\", \"output\": \"v.MP4\"}\n",
       "list.jsonl:2: output \"v.MP4\" is also the output of line 1"},
      {"id clashes with output", "{\"prompt\": \"x\", \"id\": \"v\"}\n{\"prompt\": \"y\", \"output\": \"V.mp4\"}\n",
       "list.jsonl:2: output \"V.mp4\" is also the output of line 1"},
      {"dot-dot output", "{\"prompt\": \"x\", \"output\": \"../x.mp4\"}\n", "list.jsonl:1: \"output\" leaves the output folder"},
      {"dot-dot id", "{\"prompt\": \"x\", \"id\": \"..\"}\n", "list.jsonl:1: \"id\" leaves the output folder"},
      {"absolute output", "{\"prompt\": \"x\", \"output\": \"/tmp/x.mp4\"}\n", "list.jsonl:1: \"output\" is an absolute path"},
      {"subfolder output", "{\"prompt\": \"x\", \"output\": \"a/x.mp4\"}\n", "list.jsonl:1: \"output\" contains a path separator"},
      {"NUL in id", "{\"prompt\": \"x\", \"id\": \"a\\u0000b\"}\n", "list.jsonl:1: \"id\" contains a NUL byte"},
      {"long output", "{\"prompt\": \"x\", \"output\": \"" + long_name + ".mp4\"}\n", "is 234 bytes long (at most 200)"},
      {"not mp4", "{\"prompt\": \"x\", \"output\": \"x.avi\"}\n", "list.jsonl:1: \"output\" must end in .mp4"},
      {"empty prompt", "{\"prompt\": \"\"}\n", "list.jsonl:1:"},
      {"timesteps type", "{\"prompt\": \"x\", \"sampler\": \"distill\", \"timesteps\": \"1000,500\"}\n",
       "list.jsonl:1: \"timesteps\" must be a list of integers"},
      {"timesteps order", "{\"prompt\": \"x\", \"sampler\": \"distill\", \"timesteps\": [500, 1000]}\n",
       "list.jsonl:1: \"timesteps\": 1000 follows 500"},
      {"timesteps 0", "{\"prompt\": \"x\", \"sampler\": \"distill\", \"timesteps\": [1000, 0]}\n", "outside 1..1000"},
      {"distill without timesteps", "{\"prompt\": \"x\", \"sampler\": \"distill\"}\n",
       "list.jsonl:1: --sampler distill needs --timesteps"},
      {"distill with steps", "{\"prompt\": \"x\", \"sampler\": \"distill\", \"timesteps\": [1000], \"steps\": 4}\n",
       "list.jsonl:1: \"steps\" with the distill sampler"},
      {"timesteps without distill", "{\"prompt\": \"x\", \"timesteps\": [1000, 500]}\n",
       "list.jsonl:1: \"timesteps\" is for the distill sampler, not unipc"},
      {"loras type", "{\"prompt\": \"x\", \"loras\": \"a.safetensors\"}\n", "list.jsonl:1: \"loras\" must be a list"},
      {"lora strength", "{\"prompt\": \"x\", \"loras\": [{\"file\": \"a.safetensors\", \"strength\": \"abc\"}]}\n",
       "\"loras[].strength\" must be a number"},
      {"lora missing", "{\"prompt\": \"x\", \"loras\": [{\"file\": \"/nonexistent/a.safetensors\"}]}\n",
       "list.jsonl:1: --lora /nonexistent/a.safetensors: no such file"},
  };
  TempDir dir;
  for (const BadList& c : cases) {
    SCOPED_TRACE(c.name);
    RunResult r = run_list(dir, c.text);
    EXPECT_EQ(r.code, 65) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("nothing was rendered"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("out"))) << "the output folder was touched";
  }
}

TEST(BatchValidation, AllErrorsAreListedAtOnceAndCommentsAndBlankLinesAreIgnored) {
  TempDir dir;
  RunResult r = run_list(dir,
                         "# a comment\n"
                         "\n"
                         "{\"prompt\": \"fine\"}\n"
                         "not json\n"
                         "   # indented comment\n"
                         "{\"prompt\": 1}\n"
                         "{\"prompt\": \"x\", \"frames\": 1.5}\n");
  EXPECT_EQ(r.code, 65);
  EXPECT_NE(r.err.find("list.jsonl:4: invalid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("list.jsonl:6: \"prompt\" must be a string"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("list.jsonl:7: \"frames\" must be an integer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("list.jsonl:1:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("list.jsonl:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("3 invalid line(s)"), std::string::npos) << r.err;
}

TEST(BatchValidation, EmptyListIsANoOpUnlessFailEmpty) {
  TempDir dir;
  for (const char* text : {"", "# only\n\n# comments\n"}) {
    RunResult r = run_list(dir, text);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("has no prompts"), std::string::npos) << r.err;
    r = run_list(dir, text, {"--fail-empty"});
    EXPECT_EQ(r.code, 65) << r.err;
  }
}

TEST(BatchValidation, SkipInvalidGetsPastTheListChecks) {
  TempDir dir;
  // With --skip-invalid the valid line goes on to the model lookup, which fails (66) here.
  RunResult r = run_list(dir, "{\"prompt\": \"fine\"}\n{\"prompt\": 2}\n", {"--skip-invalid"});
  EXPECT_EQ(r.code, 66) << r.err;
  EXPECT_NE(r.err.find("list.jsonl:2:"), std::string::npos) << r.err;
}

TEST(BatchValidation, SkipInvalidRendersTheValidLinesAndRecordsTheOthersAsFailed) {
  TempDir dir;
  write_text(dir.file("list.jsonl"),
             "{\"id\": \"ok\", \"prompt\": \"fine\"}\n{\"prompt\": 2}\nnot json\n");
  const std::string out = dir.file("out");
  for (int run = 0; run < 2; ++run) {
    RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--skip-invalid"}));
    EXPECT_EQ(r.code, 65) << r.err;  // the list still had bad lines
    EXPECT_NE(r.err.find("list.jsonl:2:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("list.jsonl:3:"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(std::filesystem::exists(out + "/ok.mp4"));
  std::vector<int> failed_lines;
  int done = 0;
  for (const nlohmann::json& rec : manifest_lines(out)) {
    if (rec["status"] == "done") ++done;
    if (rec["status"] == "failed") {
      failed_lines.push_back(rec["line"].get<int>());
      EXPECT_EQ(rec["code"], 65);
      EXPECT_FALSE(rec["retryable"].get<bool>());
    }
  }
  EXPECT_EQ(done, 1);
  EXPECT_EQ(failed_lines, (std::vector<int>{2, 3}));  // once each, not again on the rerun
}

TEST(BatchValidation, BadShardSpecsAndSeedsAreUsageErrors) {
  TempDir dir;
  for (const char* spec : {"5/4", "4/4", "-1/4", "a/b", "1", "1/0", "0/"}) {
    SCOPED_TRACE(spec);
    RunResult r = run_list(dir, "{\"prompt\": \"x\"}\n", {"--shard", spec});
    EXPECT_EQ(r.code, 64) << r.err;
  }
  EXPECT_EQ(run_list(dir, "{\"prompt\": \"x\"}\n", {"--seeds", "0"}).code, 64);
  EXPECT_EQ(run_t2v({"batch", dir.file("missing.jsonl"), "--out-dir", dir.file("out")}).code, 66);
}

// ---- in-process pieces -------------------------------------------------------------------------

class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) {
    for (const char* k : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                          "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_STEP", "JOB_COMPLETION_INDEX", "T2V_SHARDS"})
      unsetenv(k);
    for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
    vars_ = std::move(vars);
  }
  ~ScopedEnv() {
    for (const auto& kv : vars_) unsetenv(kv.first.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

int shard_error(const std::string& spec, int shards = 0) {
  try {
    resolve_shard(spec, shards);
  } catch (const Error& e) {
    return e.code();
  }
  return 0;
}

TEST(BatchShard, FromFlagSlurmAndKubernetes) {
  {
    ScopedEnv env({});
    ShardSpec s = resolve_shard("2/5", 0);
    EXPECT_EQ(s.index, 2);
    EXPECT_EQ(s.count, 5);
    s = resolve_shard("", 0);
    EXPECT_EQ(s.index, 0);
    EXPECT_EQ(s.count, 1);
  }
  {
    ScopedEnv env({{"SLURM_ARRAY_TASK_ID", "12"}, {"SLURM_ARRAY_TASK_MIN", "10"}, {"SLURM_ARRAY_TASK_MAX", "13"},
                   {"SLURM_ARRAY_TASK_COUNT", "4"}});
    ShardSpec s = resolve_shard("", 0);
    EXPECT_EQ(s.index, 2);
    EXPECT_EQ(s.count, 4);
    EXPECT_EQ(resolve_shard("1/3", 0).index, 1);  // the flag wins
  }
  {
    ScopedEnv env({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_MAX", "7"},
                   {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_STEP", "2"}});
    ShardSpec s = resolve_shard("", 0);  // --array=1-7:2 -> 1,3,5,7
    EXPECT_EQ(s.index, 2);
    EXPECT_EQ(s.count, 4);
  }
  {
    ScopedEnv env({{"SLURM_ARRAY_TASK_ID", "14"}, {"SLURM_ARRAY_TASK_MIN", "10"}, {"SLURM_ARRAY_TASK_MAX", "13"},
                   {"SLURM_ARRAY_TASK_COUNT", "4"}});
    EXPECT_EQ(shard_error(""), 64);  // outside MIN..MAX
  }
  {
    ScopedEnv env({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_MAX", "9"},
                   {"SLURM_ARRAY_TASK_COUNT", "3"}});
    EXPECT_EQ(shard_error(""), 64);  // --array=1,4,9 is not arithmetic
  }
  {
    ScopedEnv env({{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "3"}});
    EXPECT_EQ(shard_error(""), 64);
  }
  {
    ScopedEnv env(std::vector<std::pair<std::string, std::string>>{{"JOB_COMPLETION_INDEX", "3"}});
    EXPECT_EQ(shard_error(""), 64);  // count unknown
    ShardSpec s = resolve_shard("", 8);
    EXPECT_EQ(s.index, 3);
    EXPECT_EQ(s.count, 8);
    EXPECT_EQ(shard_error("", 3), 64);
  }
  {
    ScopedEnv env({{"JOB_COMPLETION_INDEX", "1"}, {"T2V_SHARDS", "2"}});
    EXPECT_EQ(resolve_shard("", 0).count, 2);
  }
}

TEST(BatchList, SeedsExpandIdsAndDerivedSeedsAreStable) {
  TempDir dir;
  write_text(dir.file("l.jsonl"), "{\"prompt\": \"a\", \"id\": \"x\"}\n{\"prompt\": \"b\", \"seed\": 40}\n");
  GenerateOptions d;
  BatchList l = read_batch_list(dir.file("l.jsonl"), d, 2);
  ASSERT_TRUE(l.errors.empty());
  ASSERT_EQ(l.items.size(), 4u);
  EXPECT_EQ(l.items[0].seed, derive_seed("x", 0));
  EXPECT_EQ(l.items[1].seed, derive_seed("x", 1));
  EXPECT_NE(l.items[0].seed, l.items[1].seed);
  EXPECT_EQ(l.items[0].id, "x-s" + std::to_string(l.items[0].seed));
  EXPECT_EQ(l.items[0].file, l.items[0].id + ".mp4");
  EXPECT_EQ(l.items[2].id, "2-s40");
  EXPECT_EQ(l.items[3].id, "2-s41");
  EXPECT_EQ(l.items[3].seed, 41u);
  EXPECT_FALSE(l.items[2].seed_derived);
  // The same list read again gives the same seeds (reruns and other shards agree).
  BatchList again = read_batch_list(dir.file("l.jsonl"), d, 2);
  EXPECT_EQ(again.items[1].seed, l.items[1].seed);
}

// "loras" replace the default list; "timesteps" go with the distill sampler, which
// runs without guidance unless the line gives a cfg; items record both.
TEST(BatchList, LorasAndDistillPerItem) {
  TempDir dir;
  const std::string lora = std::string(T2V_TEST_DATA_DIR) + "/lora/original.safetensors";
  write_text(dir.file("l.jsonl"),
             "{\"prompt\": \"a\"}\n"
             "{\"prompt\": \"b\", \"loras\": [{\"file\": \"" + lora + "\", \"strength\": 0.6}, {\"file\": \"" + lora +
                 "\"}]}\n"
             "{\"prompt\": \"c\", \"loras\": [], \"sampler\": \"distill\", \"timesteps\": [1000, 750, 500, 250]}\n"
             "{\"prompt\": \"d\", \"sampler\": \"distill\", \"timesteps\": [1000, 500], \"cfg\": 2.5}\n");
  GenerateOptions d;
  d.loras = {{lora, 0.3}};
  const BatchList l = read_batch_list(dir.file("l.jsonl"), d, 1);
  ASSERT_TRUE(l.errors.empty()) << l.errors.front();
  ASSERT_EQ(l.items.size(), 4u);
  EXPECT_EQ(l.items[0].opts.loras, (std::vector<LoraSpec>{{lora, 0.3}}));
  EXPECT_EQ(l.items[1].opts.loras, (std::vector<LoraSpec>{{lora, 0.6}, {lora, 1.0}}));
  EXPECT_TRUE(l.items[2].opts.loras.empty());
  EXPECT_EQ(l.items[2].opts.sampler, Sampler::kDistill);
  EXPECT_EQ(l.items[2].opts.steps, 4);
  EXPECT_EQ(l.items[2].opts.cfg, 1.0);
  EXPECT_EQ(l.items[3].opts.cfg, 2.5);
  const nlohmann::json s1 = item_settings(l.items[1], "m"), s2 = item_settings(l.items[2], "m");
  EXPECT_EQ(s1["loras"][0]["strength"], 0.6);
  EXPECT_FALSE(s1.contains("timesteps"));
  EXPECT_EQ(s2["timesteps"], nlohmann::json::array({1000, 750, 500, 250}));
  EXPECT_FALSE(s2.contains("loras"));
  // A list without the new fields keeps the settings records it always had.
  EXPECT_FALSE(item_settings(l.items[0], "m").contains("timesteps"));
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // a million 'a' fed in odd pieces
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Gallery, EscapesPromptsAndFileNames) {
  std::vector<nlohmann::json> recs = {
      {{"status", "done"},
       {"id", "a"},
       {"file", "a #1.mp4"},
       {"settings", {{"prompt", "<script>alert('x')</script> & \"q\""}, {"seed", 3}}}},
      {{"status", "failed"}, {"id", "b"}, {"file", "b.mp4"}},
  };
  std::string h = gallery_html(recs, "t2v <test>");
  EXPECT_EQ(h.find("<script>"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"), std::string::npos);
  EXPECT_NE(h.find("src=\"a%20%231.mp4\""), std::string::npos);
  EXPECT_EQ(h.find("b.mp4"), std::string::npos);  // only finished items
  EXPECT_NE(h.find("<title>t2v &lt;test&gt;</title>"), std::string::npos);
}

}  // namespace
}  // namespace t2v::test
