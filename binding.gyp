# weft_bridge: one N-API addon embedding CPython 3.11 and CRuby 3.1 (issue 4).
# Flags come from scripts/build-native.mjs so Python is pinned to one
# python3-config (bridge-findings pitfall 11); build with `npm run build:native`.
#
# Python.h and ruby.h must never meet in one translation unit (pitfall 18):
# each interpreter's files are built as their own static library with only
# that interpreter's include flags; addon.cc and native/common see neither.
{
  "target_defaults": {
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "native"
    ],
    # C++ exceptions stay on: node-addon-api throws JS errors as C++
    # exceptions in the N-API layer. No exception ever crosses a Ruby frame
    # (ruby-runtime.cc wraps every Ruby call in rb_protect and keeps C++
    # objects with destructors out of frames Ruby can longjmp through).
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-std=c++17", "-O2", "-fPIC", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "weft_python",
      "type": "static_library",
      "sources": ["native/python/python-runtime.cc"],
      "cflags_cc": ["<!@(node scripts/build-native.mjs --flags py-cflags)"],
      "defines": [
        "WEFT_PYTHON_HOME=\"<!(node scripts/build-native.mjs --flags py-home)\"",
        "WEFT_PYTHON_SONAME=\"<!(node scripts/build-native.mjs --flags py-soname)\""
      ]
    },
    {
      "target_name": "weft_ruby",
      "type": "static_library",
      "sources": ["native/ruby/ruby-runtime.cc"],
      "cflags_cc": ["<!@(node scripts/build-native.mjs --flags rb-cflags)"]
    },
    {
      "target_name": "weft_bridge",
      "dependencies": ["weft_python", "weft_ruby"],
      "sources": [
        "native/addon.cc",
        "native/bridge-host.cc",
        "native/common/circuit-breaker.cc",
        "native/common/fatal-signals.cc",
        "native/common/job-queue.cc",
        "native/common/native-thread.cc",
        "native/common/runtime-worker.cc",
        "native/common/timeout-watchdog.cc",
        "native/ruby/signal-chain.cc",
        "native/typescript/typescript-runtime.cc"
      ],
      "ldflags": [
        "-Wl,--no-as-needed",
        "-Wl,-rpath,<!(node scripts/build-native.mjs --flags py-libdir)",
        "<!@(node scripts/build-native.mjs --flags py-ldflags)",
        "<!@(node scripts/build-native.mjs --flags rb-libs)",
        "-lpthread", "-ldl"
      ]
    }
  ]
}
