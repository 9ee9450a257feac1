// The JS-task runtime's shared state (js_runtime.h): the registry of runtimes by id, the signal
// of quiescence to the owner, and destroyRuntime, the one way a runtime stops.
#include "js_runtime.h"

#include <unordered_map>

#include "errors.h"

namespace hwsq::js {

// The last task is gone while the owner waits for quiescence: wake its endpoint (processEndpoint
// tells JS). mainEp is set by setMain() before any task exists and never reset.
void JsRuntime::signalMainIdle() {
  if (Endpoint* ep = mainEp.get()) ep->signal();
}

namespace {

// Runtimes by id: workers find theirs from the id in their bootstrap data. Leaked on purpose
// (no static destructor may block on workers at process exit).
std::mutex gRegMu;
auto* gRuntimes = new std::unordered_map<uint32_t, std::shared_ptr<JsRuntime>>();
uint32_t gNextId = 1;

}  // namespace

void registerRuntime(const std::shared_ptr<JsRuntime>& rt) {
  std::lock_guard<std::mutex> lk(gRegMu);
  rt->id = gNextId++;
  (*gRuntimes)[rt->id] = rt;
}

std::shared_ptr<JsRuntime> lookup(uint32_t id) {
  std::lock_guard<std::mutex> lk(gRegMu);
  auto it = gRuntimes->find(id);
  if (it == gRuntimes->end()) throw HwsqRangeError("ERR_HWSQ_RUNTIME_CLOSED", "the runtime was destroyed");
  return it->second;
}

// Stops a runtime for good, on its owner's thread, once no P has a thread any more (the JS
// workers exited; Node stops an environment's Workers before its cleanup hooks run): drops what
// is still queued, hands the completions already queued for the owner to JS (unless its
// environment is being torn down: no JS may run), closes the owner's endpoint and forgets the
// runtime. The JS handle keeps the memory until it is collected.
void destroyRuntime(JsRuntime* rt, bool deliverCompletions) {
  if (rt->destroying) return;
  rt->destroying = true;
  try {
    for (int p = 0; p < rt->core->workerCount(); ++p) rt->core->reclaim(p);
    rt->core->destroy();
    rt->shm.reset();  // unpublished now: the last runtime's publisher thread is joined
  } catch (...) {  // nothing of it can fail for a runtime whose threads are gone; never throw from teardown
  }
  if (rt->events) rt->events->release();  // the core (its watch first) has stopped: nothing posts now
  if (Endpoint* ep = rt->mainEp.get()) {
    if (deliverCompletions && !ep->dying) drainCompletions(ep);
    closeEndpoint(ep);
  }
  std::shared_ptr<JsRuntime> keep;  // released after the registry lock
  {
    std::lock_guard<std::mutex> lk(gRegMu);
    auto it = gRuntimes->find(rt->id);
    if (it != gRuntimes->end()) {
      keep = std::move(it->second);
      gRuntimes->erase(it);
    }
  }
  rt->destroyed = true;
}

}  // namespace hwsq::js
