// `ttt-run data`: inspect a data source (documents, tokens, batch digests, tokenizer throughput).
// The work is runtime/data's runDataInspect; this file only maps flags onto its options.
#include "tools/ttt-run/Command.h"

#include "runtime/data/DataInspect.h"

#include <CLI/CLI.hpp>

#include <memory>

namespace ttt::run {

void registerDataCommand(CLI::App &app, CommandSelection &selection) {
  auto opts = std::make_shared<data::DataInspectOptions>();
  auto rows = std::make_shared<bool>(false);
  CLI::App *cmd = app.add_subcommand(
      "data", "Inspect a data source: documents, tokens, digests of the first batches, tokens/s");
  cmd->add_option("--data", opts->source.data,
                  "sample (embedded), c4 (Hugging Face allenai/c4), a folder, or an https URL")
      ->capture_default_str();
  cmd->add_option("--tokenizer", opts->tokenizer,
                  "tokenizer.model (default: HF cache, then scripts/fetch_tokenizer.sh's copy)");
  cmd->add_option("--cache-dir", opts->source.cacheDir, "download cache (default: HF_DATASETS_CACHE/HF_HOME)");
  cmd->add_option("--revision", opts->source.revision, "allenai/c4 revision")->capture_default_str();
  cmd->add_option("--base-url", opts->source.baseUrl, "mirror of the c4 `en` folder");
  cmd->add_option("--ca-bundle", opts->source.caBundle, "PEM file of trusted CAs");
  cmd->add_option("--train-shards", opts->source.maxTrainShards, "use only the first N train shards");
  cmd->add_option("--seq-len", opts->loader.seqLen, "tokens per sequence")->capture_default_str();
  cmd->add_option("--batch", opts->loader.globalBatch, "global batch (rows)")->capture_default_str();
  cmd->add_option("--seed", opts->loader.seed, "order seed")->capture_default_str();
  cmd->add_option("--shards-per-group", opts->loader.shardsPerGroup,
                  "shards mixed into one shuffled stream (0: all)")->capture_default_str();
  cmd->add_option("--threads", opts->loader.threads, "tokenizer workers (0: all cores)");
  cmd->add_flag("--row-streams", *rows, "state-passing mode: each row its own contiguous stream");
  cmd->add_option("--documents", opts->documents, "documents to print")->capture_default_str();
  cmd->add_option("--batches", opts->batches, "batches to digest")->capture_default_str();
  cmd->add_flag("--validation", opts->validation, "also digest validation batches");
  cmd->add_flag("!--no-throughput", opts->throughput, "skip the pipeline throughput measurement");
  cmd->add_option("--bench-workers", opts->benchWorkers,
                  "worker counts to measure, e.g. 1,2,4,8,16 (default: 1 and --threads)")
      ->delimiter(',');
  cmd->add_option("--bench-seconds", opts->benchSeconds, "seconds per throughput measurement")
      ->capture_default_str();
  cmd->callback([opts, rows, &selection] {
    opts->loader.mode = *rows ? data::BatchMode::RowStreams : data::BatchMode::Shuffled;
    selection.action = [opts] { return data::runDataInspect(*opts); };
  });
}

} // namespace ttt::run
