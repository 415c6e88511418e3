"""Print what pickle, copy and deepcopy do with threading's factories and their instances, one
line per case: run once plainly and once under lockwatch, the two outputs must be equal."""
import copy
import pickle
import threading

NAMES = ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore")


def outcome(what, fn):
    try:
        result = fn()
    except Exception as exc:  # the error is the outcome
        return f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(result, bytes):
        result = pickle.loads(result)
        # what the name unpickles to, identified without lockwatch's objects
        return f"{what}: unpickled {getattr(result, '__module__', '?')}.{getattr(result, '__qualname__', '?')}"
    return f"{what}: {'the same object' if result is fn.__defaults__[0] else type(result).__name__}"


for name in NAMES:
    factory = getattr(threading, name)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        print(outcome(f"pickle {name} protocol {protocol}", lambda x=factory, p=protocol: pickle.dumps(x, p)))
    print(outcome(f"copy {name}", lambda x=factory: copy.copy(x)))
    print(outcome(f"deepcopy {name}", lambda x=factory: copy.deepcopy(x)))
    instance = factory()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        print(outcome(f"pickle {name}() protocol {protocol}", lambda x=instance, p=protocol: pickle.dumps(x, p)))
    print(outcome(f"copy {name}()", lambda x=instance: copy.copy(x)))
    print(outcome(f"deepcopy {name}()", lambda x=instance: copy.deepcopy(x)))
