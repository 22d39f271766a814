# MAP_SHARED memory as real Python programs use it (tests/mm_shared.rs): `python3 mm_shared.py
# CASE [DIR]`, compared with the native run line by line. multiprocessing's locks are POSIX
# semaphores (sem_open: a file in /dev/shm mapped MAP_SHARED), its Value/Array live in a
# MAP_SHARED mapping of an unlinked file in /dev/shm, its SharedMemory is shm_open + mmap; SQLite
# in WAL mode keeps its WAL index in a MAP_SHARED mapping of the database's -shm file.
#   pool           Pool(2).map and imap_unordered of a small function
#   value          a Value counter incremented under a Lock by 2 processes, an Array written by
#                  a child
#   queue          200 items through a Queue from a child process (a feeder thread, a pipe, locks)
#   shared_memory  a SharedMemory block written by a child
#   sqlite DIR     DIR/t.db in WAL mode: 1000 rows, a second connection, another process (a new
#                  interpreter) reading and inserting, a checkpoint; the file stays in DIR
import multiprocessing as mp
import os
import subprocess
import sys


def square(x):
    return x * x


def add(counter, lock, n):
    for _ in range(n):
        with lock:
            counter.value += 1


def set_item(arr):
    arr[2] = 7.25


def produce(q, n):
    for i in range(n):
        q.put(('item', i, 'x' * (i % 50)))
    q.put(None)


def fill(name):
    from multiprocessing import shared_memory
    m = shared_memory.SharedMemory(name=name)
    m.buf[:5] = b'child'
    m.close()


def pool():
    with mp.Pool(2) as p:
        print(p.map(square, range(20)))
        print(sorted(p.imap_unordered(square, range(5))))


def value():
    counter = mp.Value('i', 0)
    lock = mp.Lock()
    ps = [mp.Process(target=add, args=(counter, lock, 300)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print('exit codes', [p.exitcode for p in ps], 'counter', counter.value)
    arr = mp.Array('d', [0.5] * 4)
    p = mp.Process(target=set_item, args=(arr,))
    p.start()
    p.join()
    print('array', list(arr), 'exit', p.exitcode)


def queue():
    q = mp.Queue()
    p = mp.Process(target=produce, args=(q, 200))
    p.start()
    got = []
    while True:
        v = q.get(timeout=30)
        if v is None:
            break
        got.append(v)
    p.join()
    print('got', len(got), got[0], got[-1])
    print('in order', [v[1] for v in got] == list(range(200)), 'exit', p.exitcode)


def shared():
    from multiprocessing import shared_memory
    m = shared_memory.SharedMemory(create=True, size=4096)
    m.buf[:6] = b'parent'
    p = mp.Process(target=fill, args=(m.name,))
    p.start()
    p.join()
    print('exit', p.exitcode, bytes(m.buf[:6]))
    m.close()
    m.unlink()


CHILD = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
print('child sees', c.execute('select count(*) from t').fetchone()[0], flush=True)
c.execute('begin')
for i in range(10):
    c.execute('insert into t(s) values (?)', ('child %d' % i,))
c.execute('commit')
c.close()
"""


def sqlite(d):
    import sqlite3
    db = os.path.join(d, 't.db')
    c = sqlite3.connect(db, isolation_level=None)
    print(c.execute('PRAGMA journal_mode=WAL').fetchone()[0])
    c.execute('create table t(i integer primary key, s text)')
    c.execute('begin')
    for i in range(1000):
        c.execute('insert into t(s) values (?)', ('row %d' % i,))
    c.execute('commit')
    print(c.execute('select count(*), sum(i), min(s), max(s) from t').fetchone())
    print('files:', sorted(os.listdir(d)))
    r = sqlite3.connect(db, isolation_level=None)
    print('second connection:', r.execute('select count(*) from t').fetchone())
    sys.stdout.flush()
    p = subprocess.run([sys.executable, '-c', CHILD, db])
    print('child exited', p.returncode)
    print('after the child:', c.execute('select count(*), max(s) from t').fetchone())
    print('second connection:', r.execute('select count(*) from t').fetchone())
    r.close()
    print('checkpoint:', c.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone())
    c.close()
    print('files:', sorted(os.listdir(d)))


if __name__ == '__main__':
    case = sys.argv[1]
    if case == 'sqlite':
        sqlite(sys.argv[2])
    else:
        print(mp.get_start_method())
        {'pool': pool, 'value': value, 'queue': queue, 'shared_memory': shared}[case]()
