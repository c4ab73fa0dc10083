"""A second connection for a run's reads: the price segments' sums and the statement lines are read on it while
the run's own connection reads and folds the daily rollup, so the server works on both at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

T = TypeVar("T")


class Reader(Protocol):
    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]: ...


class SideReader:
    """Runs reads, in order, in a session of their own on a background thread, so the server answers them
    while this thread works; `submit` returns a future of `read(side_session, *args)`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenledger-reconcile-reader")
        self._session: Session | None = None

    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(self._read, read, *args)

    def _read(self, read: Callable[..., T], *args: Any) -> T:
        if self._session is None:
            self._session = Session(self._engine)
        return read(self._session, *args)

    def close(self) -> None:
        def end() -> None:
            if self._session is not None:
                self._session.close()  # read only: nothing to commit

        self._executor.submit(end).result()
        self._executor.shutdown()


class InlineReader:
    """The same interface on the caller's own session, for a session bound to a single connection."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(read(self._session, *args))
        except Exception as error:
            future.set_exception(error)
        return future


@contextmanager
def side_reader(session: Session) -> Iterator[Reader]:
    """A SideReader on the session's engine, or an InlineReader when the session is bound to a connection."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        yield InlineReader(session)
        return
    reader = SideReader(bind)
    try:
        yield reader
    finally:
        reader.close()
