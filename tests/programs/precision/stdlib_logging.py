"""A lock-order cycle made only of the standard library's own locks: two logging handlers' locks
(both created by logging.Handler.createLock).

The "batch" thread logs an error through a MemoryHandler, which flushes its buffer into its
target, a StreamHandler, while holding its own lock: memory lock -> stream lock. The "web" thread
logs through that StreamHandler, whose formatter logs a warning about slow formatting through
the batch logger: stream lock -> memory lock."""
import io
import logging
import logging.handlers
import threading

out = io.StringIO()
stream = logging.StreamHandler(out)
memory = logging.handlers.MemoryHandler(capacity=100, flushLevel=logging.ERROR, target=stream)

batch = logging.getLogger("batch")
batch.addHandler(memory)
batch.propagate = False
web = logging.getLogger("web")
web.propagate = False


class TimingFormatter(logging.Formatter):
    def format(self, record):
        if record.name == "web":
            batch.warning("formatting %s", record.getMessage())  # -> memory handler's lock
        return super().format(record)


stream.setFormatter(TimingFormatter("%(name)s %(message)s"))
web.addHandler(stream)
flushed = threading.Event()


def batch_job():
    batch.error("job failed")  # flushes the memory handler into the stream handler
    flushed.set()


def web_request():
    flushed.wait(10)
    web.error("request done")


threads = [threading.Thread(target=batch_job, name="batch"), threading.Thread(target=web_request, name="web")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(out.getvalue().splitlines())
