// duet train: DPO-family preference tuning. Every option comes from one table
// (trainer::train_options): TRL's names, in kebab and snake case on the
// command line, snake case in a --config file (JSON or YAML). The file is
// applied first, flags given on the command line override it.
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "dist/fault.hpp"
#include "dist/make_communicator.hpp"
#include "engine/engine.hpp"
#include "trainer/trainer.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

struct TrainFlags {
  CLI::App* app = nullptr;
  std::string config;
  std::map<std::string, std::string> text;         // key -> the flag's text
  std::map<std::string, CLI::Option*> options;     // key -> its option
  std::map<std::string, CLI::Option*> not_in_duet; // TRL's options duet lacks
  std::map<std::string, std::string> ignored;      // their values
};

std::string kebab(std::string s) {
  for (char& c : s)
    if (c == '_') c = '-';
  return s;
}

// "--max-steps,--max_steps" and the same for TRL's aliases.
std::string flag_names(const trainer::OptionInfo& info) {
  std::vector<std::string> names = {info.key};
  names.insert(names.end(), info.aliases.begin(), info.aliases.end());
  std::string out;
  for (const auto& n : names) {
    out += (out.empty() ? "--" : ",--") + kebab(n);
    if (n.find('_') != std::string::npos) out += ",--" + n;
  }
  return out;
}

std::string default_text(const trainer::OptionInfo& info, const nlohmann::json& defaults) {
  if (info.key == "no_progress" || info.key == "bf16" || info.key == "fp32") return "false";
  if (!defaults.contains(info.key)) return "";
  const nlohmann::json& v = defaults[info.key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::vector<std::string> items;
    for (const auto& x : v) items.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    return fmt::format("{}", fmt::join(items, ","));
  }
  return v.is_null() ? "" : v.dump();
}

int run_train(const TrainFlags& flags) {
  std::vector<std::string> unknown;
  for (const auto& arg : flags.app->remaining())
    if (arg.starts_with("--")) unknown.push_back(arg);
  if (!unknown.empty())
    fail("unknown {} {}; duet train --help lists them all",
         unknown.size() == 1 ? "option" : "options", fmt::format("{}", fmt::join(unknown, ", ")));
  if (!flags.app->remaining().empty())
    fail("unexpected argument '{}': every option of duet train is --name VALUE", flags.app->remaining().front());
  std::vector<std::string> lacking;
  for (const auto& [key, opt] : flags.not_in_duet)
    if (opt->count() > 0) lacking.push_back(key);
  trainer::TrainOptions o;
  if (!flags.config.empty()) trainer::apply_json(o, trainer::read_config_file(flags.config), flags.config);
  nlohmann::json given = nlohmann::json::object();
  for (const auto& name : lacking) given[name] = true;  // apply_json says why each is missing
  for (const auto& info : trainer::train_options()) {
    const CLI::Option* opt = flags.options.at(info.key);
    if (opt->count() == 0) continue;
    given[info.key] = trainer::parse_option_text(info, flags.text.at(info.key), opt->get_name());
  }
  trainer::apply_json(o, given, "command line");
  o.device = engine::resolve_device(o.device, o.precision);  // options.json records the engine that ran
  o.validate();
  // Several ranks (mpirun, srun, torchrun): a failure on one rank ends them
  // all, naming the rank, instead of leaving the others in a collective.
  const std::unique_ptr<dist::Communicator> comm =
      dist::make_communicator(dist::detect_launch(), o.device, o.nccl_timeout);
  if (comm->size() == 1) {
    trainer::Trainer trainer(std::move(o));
    return trainer.run();
  }
  try {
    trainer::Trainer trainer(std::move(o), comm.get());
    return trainer.run();
  } catch (const Error& e) {
    dist::abort_job(*comm, e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    dist::abort_job(*comm, fmt::format("{}: {}", e.path1().string(), e.code().message()));
  } catch (const std::bad_alloc&) {
    dist::abort_job(*comm, "out of memory");
  } catch (const std::exception& e) {
    dist::abort_job(*comm, fmt::format("internal error: {} (please report this)", e.what()));
  }
}

}  // namespace

Command add_train(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* sub = app.add_subcommand("train", "Preference-tune a model (DPO and relatives) with prefix sharing and packing");
  sub->allow_extras();  // unknown options are listed all at once by run_train
  flags->app = sub;
  sub->add_option("--config", flags->config, "options file: JSON, or YAML (.yaml/.yml), snake_case keys as the flags")
      ->type_name("PATH");
  const nlohmann::json defaults = trainer::to_json(trainer::TrainOptions{});
  for (const auto& info : trainer::train_options()) {
    std::string help = info.help;
    if (!info.choices.empty()) help += fmt::format(" (one of: {})", fmt::join(info.choices, ", "));
    const std::string def = default_text(info, defaults);
    if (!def.empty()) help += fmt::format(" [default: {}]", def);
    std::string& slot = flags->text[info.key];
    CLI::Option* opt =
        info.type == trainer::OptionType::boolean
            ? sub->add_flag(flag_names(info), slot, help)
            : sub->add_option(flag_names(info), slot, help)->type_name(trainer::type_name(info.type));
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // as argparse: the last one given wins
    flags->options[info.key] = opt;
  }
  for (const auto& [key, why] : trainer::trl_options_not_implemented()) {
    flags->not_in_duet[key] =
        sub->add_option("--" + kebab(key) + (key.find('_') != std::string::npos ? ",--" + key : ""), flags->ignored[key])
            ->group("")
            ->expected(0, 1);
  }
  return {sub, [flags] { return run_train(*flags); }};
}

}  // namespace duet::cli
