{
  "targets": [
    {
      "target_name": "hwsq",
      "sources": [
        "native/core/topology.cpp",
        "native/core/parallelism.cpp",
        "native/core/affinity.cpp",
        "native/core/memory.cpp",
        "native/core/pinning.cpp",
        "native/core/probes/memory_probe.cpp",
        "native/core/probes/placement_probe.cpp",
        "native/core/sched/cgroup_watch.cpp",
        "native/core/sched/clock.cpp",
        "native/core/sched/external.cpp",
        "native/core/sched/find_work.cpp",
        "native/core/sched/global_queue.cpp",
        "native/core/sched/idle.cpp",
        "native/core/sched/lifecycle.cpp",
        "native/core/sched/limit.cpp",
        "native/core/sched/native_tasks.cpp",
        "native/core/sched/options.cpp",
        "native/core/sched/p_loop.cpp",
        "native/core/sched/parker.cpp",
        "native/core/sched/placement.cpp",
        "native/core/sched/stats.cpp",
        "native/core/sched/steal.cpp",
        "native/core/sched/submit.cpp",
        "native/core/sched/sysmon.cpp",
        "native/core/sched/task_pool.cpp",
        "native/core/shm/document.cpp",
        "native/core/shm/publisher.cpp",
        "native/core/shm/segment.cpp",
        "native/napi/bytes_js.cpp",
        "native/napi/js_binding.cpp",
        "native/napi/js_endpoint.cpp",
        "native/napi/js_runtime.cpp",
        "native/napi/js_task.cpp",
        "native/napi/wire.cpp",
        "native/napi/native_ops.cpp",
        "native/napi/node_memory.cpp",
        "native/napi/numa_js.cpp",
        "native/napi/options_js.cpp",
        "native/napi/parallelism_js.cpp",
        "native/napi/probes.cpp",
        "native/napi/runtime_binding.cpp",
        "native/napi/shm_js.cpp",
        "native/napi/stats_js.cpp",
        "native/napi/addon.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/core"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] } },
      "conditions": [
        ["OS=='linux'", { "cflags_cc": ["-fvisibility=hidden", "-fno-semantic-interposition", "-flto=auto"], "ldflags": ["-flto=auto", "-O2"] }],
        ["OS=='linux' and target_arch=='x64'", { "cflags_cc": ["-mtls-dialect=gnu2"] }]
      ],
      "configurations": { "Debug": { "defines": ["HWSQ_ENABLE_ASSERTS=1"] } }
    }
  ]
}
