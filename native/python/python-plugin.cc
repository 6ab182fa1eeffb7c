// weft_python.node's entry point (common/runtime-plugin.h). The only file of
// this library besides python-runtime.cc, which alone includes Python.h.
#include "common/runtime-plugin.h"
#include "python/python-runtime.h"

WEFT_RUNTIME_PLUGIN(weft::PythonRuntime)
