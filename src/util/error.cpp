#include "util/error.hpp"
// Header-only today; the translation unit keeps the library non-empty and gives
// the vtable of duet::Error a home.
namespace duet {}
