#pragma once
// One fuzz target per file: DUET_FUZZ_TARGET(name, data, size) { ... } is the
// libFuzzer entry point in the fuzz build (DUET_FUZZ_MAIN, fuzz/CMakeLists.txt)
// and a plain function fuzz_<name> in the normal build, where
// tests/fuzz replays the seed corpus and every crash input kept in
// fuzz/regressions/<name>/ through it.
//
// The contract checked: any input either parses or throws duet::Error (the one
// user-facing error, printed as one line). Any other exception, a crash, a
// sanitizer report or a leak is a bug.
#include <cstddef>
#include <cstdint>

#include "util/error.hpp"

#ifdef DUET_FUZZ_MAIN
#define DUET_FUZZ_TARGET(name, data, size) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#else
#define DUET_FUZZ_TARGET(name, data, size) int fuzz_##name(const uint8_t* data, size_t size)
#endif
