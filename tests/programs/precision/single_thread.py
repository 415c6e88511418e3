"""One thread (the main one) takes config then registry, and later registry then config."""
import threading

config_lock = threading.Lock()
registry_lock = threading.Lock()
config = {"debug": False}
registry = {}


def register(name):
    with config_lock:
        with registry_lock:  # config -> registry
            registry[name] = dict(config)


def reload_config():
    with registry_lock:
        with config_lock:  # registry -> config
            config["debug"] = bool(registry)


register("plugin")
reload_config()
print("done", config)
