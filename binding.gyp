{
  "targets": [
    {
      "target_name": "nfqueue",
      "sources": [
        "native/addon.cc",
        "native/queue.cc",
        "native/dataplane.cc",
        "native/decision_core.cc",
        "native/nfq.cc",
        "native/parse.cc",
        "native/conntrack_stats.cc",
        "native/split_cpu_sender.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-lmnl", "-lnetfilter_queue", "-lpthread"]
    },
    {
      "target_name": "dns-shaper-netns",
      "type": "executable",
      "sources": ["native/netns_exec.cc"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions"]
    }
  ]
}
