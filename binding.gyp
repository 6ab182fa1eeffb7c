# weft's native addon, in three files so a process maps only the interpreter it
# runs (common/runtime-plugin.h):
#   weft_bridge.node  the core: the one NODE_API_MODULE, the bridge host, the
#                     shared machinery and the typescript target; links no interpreter
#   weft_python.node  the Python runtime, linked against libpython (the only file that is)
#   weft_ruby.node    the Ruby runtime, linked against libruby (the only file that is)
# Flags come from scripts/build-native.mjs (which Python and Ruby:
# scripts/lib/interpreters.mjs); build with `npm run build:native`, which
# skips a runtime whose interpreter or headers are missing and says so.
#
# Python.h and ruby.h must never meet in one translation unit (pitfall 18):
# each interpreter's files are compiled only with that interpreter's include
# flags; the core sees neither.
{
  "variables": {
    "with_python%": "<!(node scripts/build-native.mjs --flags with-python)",
    "with_ruby%": "<!(node scripts/build-native.mjs --flags with-ruby)"
  },
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
      "target_name": "weft_bridge",
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
      # The runtime libraries name the core by this soname, so the loader binds
      # them to the core Node already loaded.
      "ldflags": ["-Wl,-soname,weft_bridge.node", "-lpthread", "-ldl"]
    }
  ],
  "conditions": [
    ["with_python==1", {
      "targets": [{
        "target_name": "weft_python",
        "dependencies": ["weft_bridge"],
        "sources": ["native/python/python-plugin.cc", "native/python/python-runtime.cc"],
        "cflags_cc": ["<!@(node scripts/build-native.mjs --flags py-cflags)"],
        "defines": [
          "WEFT_PYTHON_HOME=\"<!(node scripts/build-native.mjs --flags py-home)\"",
          "WEFT_PYTHON_SONAME=\"<!(node scripts/build-native.mjs --flags py-soname)\""
        ],
        "ldflags": [
          "-Wl,--no-as-needed",
          "-Wl,-rpath,'$$ORIGIN'",
          "-Wl,-rpath,<!(node scripts/build-native.mjs --flags py-libdir)"
        ],
        "libraries": [
          "<(PRODUCT_DIR)/weft_bridge.node",
          "<!@(node scripts/build-native.mjs --flags py-ldflags)",
          "-lpthread", "-ldl"
        ]
      }]
    }],
    ["with_ruby==1", {
      "targets": [{
        "target_name": "weft_ruby",
        "dependencies": ["weft_bridge"],
        "sources": ["native/ruby/ruby-plugin.cc", "native/ruby/ruby-runtime.cc"],
        "cflags_cc": ["<!@(node scripts/build-native.mjs --flags rb-cflags)"],
        "ldflags": [
          "-Wl,--no-as-needed",
          "-Wl,-rpath,'$$ORIGIN'",
          "-Wl,-rpath,<!(node scripts/build-native.mjs --flags rb-libdir)"
        ],
        "libraries": [
          "<(PRODUCT_DIR)/weft_bridge.node",
          "<!@(node scripts/build-native.mjs --flags rb-libs)",
          "-lpthread"
        ]
      }]
    }]
  ]
}
