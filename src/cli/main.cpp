// duet: paired preference tuning with prefix sharing. Sub-commands live in
// cmd_*.cpp; every user-facing failure arrives here as duet::Error and is
// printed as one line.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <vector>

#include "cli/commands.hpp"
#include "util/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"duet: fast, exact preference tuning (DPO family) with prefix sharing"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "duet 0.1.0");
  const std::vector<duet::cli::Command> commands = {
      duet::cli::add_tokenize(app),
      duet::cli::add_init(app),
      duet::cli::add_logprobs(app),
      duet::cli::add_data(app),
      duet::cli::add_train(app),
      duet::cli::add_ref(app),
      duet::cli::add_bench(app),
      duet::cli::add_merge(app),
      duet::cli::add_estimate_memory(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const duet::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "duet: error: %s\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A file-system failure the command did not word itself: still one line, naming the path.
    std::fflush(stdout);
    std::fprintf(stderr, "duet: error: %s: %s\n", e.path1().c_str(), e.code().message().c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "duet: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet: internal error: %s (please report this)\n", e.what());
    return 70;
  }
  return 0;
}
