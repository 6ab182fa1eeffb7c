// weft_ruby.node's entry point (common/runtime-plugin.h). The only file of
// this library besides ruby-runtime.cc, which alone includes ruby.h.
#include "common/runtime-plugin.h"
#include "ruby/ruby-runtime.h"

WEFT_RUNTIME_PLUGIN(weft::RubyRuntime)
