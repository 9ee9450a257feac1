// N-API surface of the NUMA layer. Only marshalling lives here: validation of JS types is done
// in lib/ (TypeScript), semantics in native/core. Core exceptions become typed JS errors.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "affinity.h"
#include "errors.h"
#include "memory.h"
#include "parallelism.h"
#include "topology.h"

namespace {

using hwsq::MemPolicy;

Napi::Error makeError(Napi::Env env, Napi::Error err, const char* code) {
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Runs fn, translating core exceptions to JS errors with stable codes.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const hwsq::HwsqRangeError& e) {
    throw makeError(env, Napi::RangeError::New(env, e.what()), e.code.c_str());
  } catch (const hwsq::UnsupportedError& e) {
    throw makeError(env, Napi::Error::New(env, e.what()), "ERR_HWSQ_UNSUPPORTED");
  } catch (const std::system_error& e) {
    if (e.code().value() == ENOMEM) {
      throw makeError(env, Napi::RangeError::New(env, e.what()), "ERR_HWSQ_OUT_OF_MEMORY");
    }
    auto err = makeError(env, Napi::Error::New(env, e.what()), "ERR_HWSQ_SYSCALL");
    err.Set("errno", Napi::Number::New(env, e.code().value()));
    throw err;
  } catch (const std::invalid_argument& e) {
    throw makeError(env, Napi::TypeError::New(env, e.what()), "ERR_HWSQ_INVALID_ARG");
  }
}

Napi::Array intArray(Napi::Env env, const std::vector<int>& values) {
  auto arr = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) arr.Set(i, Napi::Number::New(env, values[i]));
  return arr;
}

std::vector<int> toIntVector(const Napi::Value& value) {
  std::vector<int> out;
  auto arr = value.As<Napi::Array>();
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
  return out;
}

std::string optionalString(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() > index && info[index].IsString()) return info[index].As<Napi::String>().Utf8Value();
  return {};
}

MemPolicy toPolicy(const std::string& name) {
  if (name == "bind") return MemPolicy::Bind;
  if (name == "preferred") return MemPolicy::Preferred;
  if (name == "interleave") return MemPolicy::Interleave;
  if (name == "local") return MemPolicy::Local;
  if (name == "default") return MemPolicy::Default;
  throw std::invalid_argument("unknown memory policy: " + name);
}

const char* policyName(MemPolicy p) {
  switch (p) {
    case MemPolicy::Bind: return "bind";
    case MemPolicy::Preferred: return "preferred";
    case MemPolicy::Interleave: return "interleave";
    case MemPolicy::Local: return "local";
    case MemPolicy::Default: break;
  }
  return "default";
}

Napi::Value Topology(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string root = optionalString(info, 0);
  return guarded(env, [&]() -> Napi::Value {
    hwsq::Topology topo = hwsq::readTopology(root);
    auto nodes = Napi::Array::New(env, topo.nodes.size());
    for (size_t i = 0; i < topo.nodes.size(); ++i) {
      const auto& n = topo.nodes[i];
      auto o = Napi::Object::New(env);
      o.Set("id", n.id);
      o.Set("cpus", intArray(env, n.cpus));
      o.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(n.memoryBytes)));
      o.Set("freeBytes", Napi::Number::New(env, static_cast<double>(n.freeBytes)));
      o.Set("distances", intArray(env, n.distances));
      o.Set("hasMemory", n.hasMemory);
      nodes.Set(i, o);
    }
    auto cpus = Napi::Array::New(env, topo.cpus.size());
    for (size_t i = 0; i < topo.cpus.size(); ++i) {
      const auto& c = topo.cpus[i];
      auto o = Napi::Object::New(env);
      o.Set("id", c.id);
      o.Set("node", c.node);
      o.Set("core", c.core);
      o.Set("package", c.package);
      o.Set("die", c.die);
      o.Set("l3", c.l3);
      o.Set("online", c.online);
      o.Set("siblings", intArray(env, c.siblings));
      cpus.Set(i, o);
    }
    auto result = Napi::Object::New(env);
    result.Set("nodes", nodes);
    result.Set("cpus", cpus);
    result.Set("allowedCpus", intArray(env, topo.allowedCpus));
    result.Set("synthetic", topo.synthetic);
    return result;
  });
}

Napi::Value Parallelism(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string root = optionalString(info, 0);
  int allowed = info[1].As<Napi::Number>().Int32Value();
  return guarded(env, [&]() -> Napi::Value {
    hwsq::Parallelism p = hwsq::readParallelism(root, allowed);
    auto o = Napi::Object::New(env);
    o.Set("value", p.value);
    o.Set("allowedCpus", p.allowedCpus);
    o.Set("quota", p.quota < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(p.quota)));
    o.Set("period", p.period < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(p.period)));
    o.Set("source", p.source);
    o.Set("cgroupPath", p.cgroupPath);
    return o;
  });
}

Napi::Value GetAffinity(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return intArray(info.Env(), hwsq::getThreadAffinity()); });
}

// setAffinity(cpus, scope): scope "thread" (calling thread) or "process" (every thread).
Napi::Value SetAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto cpus = toIntVector(info[0]);
  bool process = optionalString(info, 1) == "process";
  return guarded(env, [&]() -> Napi::Value {
    if (process) return Napi::Number::New(env, hwsq::setProcessAffinity(cpus));
    hwsq::setThreadAffinity(cpus);
    return Napi::Number::New(env, 1);
  });
}

Napi::Value CurrentLocation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto loc = hwsq::currentLocation();
    auto o = Napi::Object::New(env);
    o.Set("cpu", loc.cpu);
    o.Set("node", loc.node);
    return o;
  });
}

Napi::Value SetMemPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    hwsq::setThreadMemPolicy(toPolicy(info[0].As<Napi::String>()), toIntVector(info[1]));
    return env.Undefined();
  });
}

Napi::Value GetMemPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto state = hwsq::getThreadMemPolicy();
    auto o = Napi::Object::New(env);
    o.Set("policy", policyName(state.policy));
    o.Set("nodes", intArray(env, state.nodes));
    return o;
  });
}

Napi::Value NumaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), hwsq::numaSyscallsAvailable());
}

Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(hwsq::pageSize()));
}

// allocOnNodes(bytes, policy, nodes) -> ArrayBuffer whose backing store is the mapping; the
// finalizer unmaps it when the buffer is garbage-collected.
Napi::Value AllocOnNodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double requested = info[0].As<Napi::Number>().DoubleValue();
  auto policy = toPolicy(info[1].As<Napi::String>());
  auto nodes = toIntVector(info[2]);
  return guarded(env, [&]() -> Napi::Value {
    size_t bytes = static_cast<size_t>(requested);
    void* mem = hwsq::allocOnNodes(bytes, policy, nodes);
    auto buffer = Napi::ArrayBuffer::New(
        env, mem, bytes, [](Napi::Env finalizeEnv, void* data, size_t* len) {
          // Finalizers may run during environment teardown: report nothing, throw nothing.
          try {
            hwsq::freeNodeMemory(data, *len);
          } catch (...) {
          }
          int64_t unused = 0;
          (void)napi_adjust_external_memory(finalizeEnv, -static_cast<int64_t>(*len), &unused);
          delete len;
        },
        new size_t(bytes));
    // Tell V8 the (page-rounded) memory is held so GC pressure reflects it.
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
    return buffer;
  });
}

struct ByteRange {
  void* data;
  size_t length;
};

// lib/ passes every kind of buffer as a Uint8Array view: typed-array info yields the data pointer
// for SharedArrayBuffer backing stores too, which the ArrayBuffer API would refuse.
ByteRange bytesOf(const Napi::Value& value) {
  if (!value.IsTypedArray()) throw std::invalid_argument("expected a Uint8Array view");
  auto view = value.As<Napi::Uint8Array>();
  return {view.Data(), view.ByteLength()};
}

Napi::Value PageNodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange range = bytesOf(info[0]);
    auto nodes = hwsq::queryPageNodes(range.data, range.length);
    auto out = Napi::Int32Array::New(env, nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) out[i] = nodes[i];
    return out;
  });
}

Napi::Value MovePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int node = info[1].As<Napi::Number>().Int32Value();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange range = bytesOf(info[0]);
    return Napi::Number::New(env, static_cast<double>(hwsq::migratePages(range.data, range.length, node)));
  });
}

// Start address of a buffer, for tests that cross-check placement with /proc/self/numa_maps.
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange range = bytesOf(info[0]);
    return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(range.data)));
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("topology", Napi::Function::New(env, Topology));
  exports.Set("parallelism", Napi::Function::New(env, Parallelism));
  exports.Set("getAffinity", Napi::Function::New(env, GetAffinity));
  exports.Set("setAffinity", Napi::Function::New(env, SetAffinity));
  exports.Set("currentLocation", Napi::Function::New(env, CurrentLocation));
  exports.Set("setMemPolicy", Napi::Function::New(env, SetMemPolicy));
  exports.Set("getMemPolicy", Napi::Function::New(env, GetMemPolicy));
  exports.Set("numaAvailable", Napi::Function::New(env, NumaAvailable));
  exports.Set("pageSize", Napi::Function::New(env, PageSize));
  exports.Set("allocOnNodes", Napi::Function::New(env, AllocOnNodes));
  exports.Set("pageNodes", Napi::Function::New(env, PageNodes));
  exports.Set("movePages", Napi::Function::New(env, MovePages));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
  exports.Set("platform", Napi::String::New(env,
#ifdef __linux__
                                            "linux"
#else
                                            "other"
#endif
                                            ));
  return exports;
}

}  // namespace

NODE_API_MODULE(hwsq, Init)
