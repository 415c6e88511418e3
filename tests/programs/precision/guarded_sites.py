"""Site scope: every Shard has its own data and index locks. Shards are nested in opposite orders
by two threads (different shard objects, so the cycle is between creation sites), always under
the global rebalance lock. With "leak", one more shard takes data -> index without that lock."""
import sys
import threading

rebalance_lock = threading.Lock()


class Shard:
    def __init__(self):
        self.data_lock = threading.Lock()
        self.index_lock = threading.Lock()


def write(shard, gated=True):
    if gated:
        with rebalance_lock:
            with shard.data_lock:
                with shard.index_lock:  # data -> index
                    pass
    else:
        with shard.data_lock:
            with shard.index_lock:  # data -> index, without the gate
                pass


def reindex(shard):
    with rebalance_lock:
        with shard.index_lock:
            with shard.data_lock:  # index -> data
                pass


shards = [Shard() for _ in range(3)]
step = threading.Event()


def writer():
    write(shards[0])
    if len(sys.argv) > 1 and sys.argv[1] == "leak":
        write(shards[2], gated=False)
    step.set()


def indexer():
    step.wait(10)
    reindex(shards[1])


threads = [threading.Thread(target=writer, name="writer"), threading.Thread(target=indexer, name="indexer")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
