#pragma once
// Each sub-command registers its options on the app and returns the function
// that runs it once parsing succeeded. main() owns error reporting.
#include <functional>

#include <CLI/CLI.hpp>

namespace duet::cli {

struct Command {
  CLI::App* app;             // the sub-command, to ask whether it was chosen
  std::function<int()> run;  // runs it once parsing succeeded
};

Command add_tokenize(CLI::App& app);
Command add_init(CLI::App& app);
Command add_logprobs(CLI::App& app);
Command add_data(CLI::App& app);
Command add_train(CLI::App& app);
Command add_ref(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_merge(CLI::App& app);
Command add_estimate_memory(CLI::App& app);

}  // namespace duet::cli
