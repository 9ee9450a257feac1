// N-API surface of the NUMA layer (topology, parallelism, pinning, memory policy and placement). Only marshalling lives here: validation of JS types is done
// in lib/ (TypeScript), semantics in native/core. Core exceptions become typed JS errors.
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>

#include "affinity.h"
#include "args_js.h"
#include "bytes_js.h"
#include "errors.h"
#include "errors_js.h"
#include "memory.h"
#include "node_memory.h"
#include "parallelism.h"
#include "pinning.h"
#include "numa_js.h"
#include "topology.h"

namespace {

using hwsq::MemPolicy;

using hwsq::napi::guarded;
using hwsq::napi::ByteRange;
using hwsq::napi::bytesOf;
using hwsq::napi::indexArg;
using hwsq::napi::indexList;
using hwsq::napi::integerIn;

Napi::Array intArray(Napi::Env env, const std::vector<int>& values) {
  auto arr = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) arr.Set(i, Napi::Number::New(env, values[i]));
  return arr;
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
  return guarded(env, [&]() -> Napi::Value {
    const int allowed = hwsq::napi::intIn(info[1], "allowed CPUs", 0, INT_MAX, "ERR_HWSQ_INVALID_ARG");
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

// pin(cpus, scope, memory, node) -> { id, cpus, previousCpus }: scope 'thread' | 'process';
// memory 'preferred' | 'bind' sets the calling thread's memory policy to node, 'none' leaves it.
// The undo goes on the calling thread's pin stack (pinning.h), shared by every copy of lib/.
Napi::Value Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    hwsq::PinRequest request;
    request.cpus = indexList(info[0], "cpus", "ERR_HWSQ_CPU_OUT_OF_RANGE");  // range-checked, never wrapped
    request.scope = optionalString(info, 1) == "process" ? hwsq::PinScope::Process : hwsq::PinScope::Thread;
    const std::string memory = optionalString(info, 2);
    if (memory == "preferred" || memory == "bind") {
      request.memoryPolicy = toPolicy(memory);
      request.memoryNodes = {hwsq::napi::indexArg(info[3], "node", "ERR_HWSQ_UNKNOWN_NODE")};
    }
    hwsq::PinRecord rec = hwsq::pushPin(request);
    auto o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, static_cast<double>(rec.id)));
    o.Set("cpus", intArray(env, rec.cpus));
    o.Set("previousCpus", intArray(env, rec.previousCpus));
    return o;
  });
}

// unpin(id): undoes that pin of the calling thread and the later ones (ERR_HWSQ_NOT_PINNED).
Napi::Value Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto id = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  return guarded(env, [&]() -> Napi::Value {
    hwsq::popPinsTo(id);
    return env.Undefined();
  });
}

// unpinLast() -> false when the calling thread has no pin.
Napi::Value UnpinLast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return Napi::Boolean::New(env, hwsq::popPin()); });
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
    hwsq::setThreadMemPolicy(toPolicy(info[0].As<Napi::String>()), indexList(info[1], "nodes", "ERR_HWSQ_UNKNOWN_NODE"));
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
  return guarded(env, [&]() -> Napi::Value {
    const size_t bytes = static_cast<size_t>(integerIn(info[0], "bytes", 1, hwsq::napi::kMaxSafeInteger, "ERR_HWSQ_BAD_SIZE"));
    auto policy = toPolicy(info[1].As<Napi::String>());
    auto nodes = indexList(info[2], "nodes", "ERR_HWSQ_UNKNOWN_NODE");
    void* mem = hwsq::allocOnNodes(bytes, policy, nodes);
    // Ref-counted so that a task's `transfer` can move it to another isolate without a copy
    // (node_memory.cpp); unmapped when the last ArrayBuffer over it is garbage-collected.
    return hwsq::js::wrapNodeMemory(env, mem, bytes);
  });
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

// samplePageNodes(buffer, maxPages): the node of at most maxPages pages spread over the buffer
// (lib/numa/memory-affinity.ts: where a spawn's memory lives, at a bounded cost per query).
Napi::Value SamplePageNodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    ByteRange range = bytesOf(info[0]);
    const int maxPages = indexArg(info[1], "maxPages", "ERR_HWSQ_INVALID_ARG");
    auto nodes = hwsq::samplePageNodes(range.data, range.length, static_cast<size_t>(maxPages));
    auto out = Napi::Int32Array::New(env, nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) out[i] = nodes[i];
    return out;
  });
}

Napi::Value MovePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int node = indexArg(info[1], "node", "ERR_HWSQ_UNKNOWN_NODE");
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

void registerAll(Napi::Env env, Napi::Object exports) {
  // The process's start affinity (and whether it restricts the process beyond its cpuset) is
  // captured at the first load, before hwsq pins anything.
  (void)hwsq::processCpus();
  exports.Set("topology", Napi::Function::New(env, Topology));
  exports.Set("parallelism", Napi::Function::New(env, Parallelism));
  exports.Set("getAffinity", Napi::Function::New(env, GetAffinity));
  exports.Set("pin", Napi::Function::New(env, Pin));
  exports.Set("unpin", Napi::Function::New(env, Unpin));
  exports.Set("unpinLast", Napi::Function::New(env, UnpinLast));
  exports.Set("currentLocation", Napi::Function::New(env, CurrentLocation));
  exports.Set("setMemPolicy", Napi::Function::New(env, SetMemPolicy));
  exports.Set("getMemPolicy", Napi::Function::New(env, GetMemPolicy));
  exports.Set("numaAvailable", Napi::Function::New(env, NumaAvailable));
  exports.Set("pageSize", Napi::Function::New(env, PageSize));
  exports.Set("allocOnNodes", Napi::Function::New(env, AllocOnNodes));
  exports.Set("pageNodes", Napi::Function::New(env, PageNodes));
  exports.Set("samplePageNodes", Napi::Function::New(env, SamplePageNodes));
  exports.Set("movePages", Napi::Function::New(env, MovePages));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
}

}  // namespace

namespace hwsq::napi {

void registerNuma(Napi::Env env, Napi::Object exports) { registerAll(env, exports); }

}  // namespace hwsq::napi
