"""The official Go peers: stan-pub, stan-sub and our stan-gopeer.

They are the reference for interoperability: what they send, our client must
receive byte for byte, and the other way round. stan-pub and stan-sub are the
nats.io examples; stan-gopeer (tests/gopeer) is a small program on the same
official Go client that moves arbitrary bytes through files and base64.
"""

import base64
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Self

from tests.support.binaries import find_binary
from tests.support.gogotext import ReceivedMessage, parse_stan_sub_line
from tests.support.process import STOP_TIMEOUT, ProcessRegistry
from tests.support.waiting import wait_until

#: Seconds a one-shot tool (stan-pub, gopeer pub) may run.
TOOL_TIMEOUT = 60.0


def unique_client_id(prefix: str) -> str:
    """A client id no other test uses, so that servers never see duplicates."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _run(command: list[str], timeout: float) -> str:
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{command[0]} did not finish within {timeout} s") from err
    output = (result.stdout + result.stderr).decode(errors="replace")
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command[:1] + command[1:8])} ... exited with "
            f"{result.returncode}:\n{output}"
        )
    return output


def stan_pub(
    url: str,
    cluster_id: str,
    channel: str,
    data: str,
    *,
    client_id: str | None = None,
    timeout: float = TOOL_TIMEOUT,
) -> str:
    """Publish one message with the official stan-pub and wait for its ack.

    :param data: the payload; a command-line argument, so no NUL bytes.
    :returns: what stan-pub printed.
    :raises AssertionError: if stan-pub fails or times out.
    """
    command = [
        str(find_binary("stan-pub")),
        "-s", url,
        "-c", cluster_id,
        "-id", client_id or unique_client_id("stan-pub"),
        channel,
        data,
    ]  # fmt: skip
    return _run(command, timeout)


def gopeer_pub(
    url: str,
    cluster_id: str,
    channel: str,
    payloads: Sequence[bytes],
    workdir: Path,
    *,
    client_id: str | None = None,
    timeout: float = TOOL_TIMEOUT,
) -> None:
    """Publish each payload as one message, in order, with the official client.

    :param payloads: any bytes, up to the server's max payload.
    :param workdir: where the payload files are written.
    :raises AssertionError: if a publish is not acknowledged.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = uuid.uuid4().hex[:8]
    files = []
    for index, payload in enumerate(payloads):
        path = workdir / f"payload-{prefix}-{index:05d}.bin"
        path.write_bytes(payload)
        files.append(str(path))
    command = [
        str(find_binary("stan-gopeer")),
        "pub",
        "-s", url,
        "-c", cluster_id,
        "-id", client_id or unique_client_id("gopeer-pub"),
        channel,
        *files,
    ]  # fmt: skip
    _run(command, timeout)


class BackgroundTool:
    """A Go tool running in the background, its output collected by threads.

    Use it as a context manager, or call :meth:`stop`: it sends SIGINT, which
    both examples handle by closing the connection (a durable is kept).
    """

    def __init__(
        self, command: list[str], name: str, registry: ProcessRegistry | None
    ) -> None:
        self.name = name
        self.command = command
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if registry is not None:
            registry.track(name, self._process)
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._read,
                args=(self._process.stdout, self._stdout),
                name=f"{name}-stdout",
                daemon=True,
            ),
            threading.Thread(
                target=self._read,
                args=(self._process.stderr, self._stderr),
                name=f"{name}-stderr",
                daemon=True,
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[bytes], lines: list[str]) -> None:
        # Ends at EOF, which comes when the process exits.
        for raw in stream:
            line = raw.decode(errors="backslashreplace").rstrip("\r\n")
            with self._changed:
                lines.append(line)
                self._on_line(stream is self._process.stdout, line)
        stream.close()

    def _on_line(self, from_stdout: bool, line: str) -> None:
        """Hook called with the lock held for every new line."""

    @property
    def stdout_lines(self) -> list[str]:
        with self._lock:
            return list(self._stdout)

    @property
    def stderr_lines(self) -> list[str]:
        with self._lock:
            return list(self._stderr)

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    def output(self) -> str:
        """Everything printed so far, for failure messages."""
        with self._lock:
            return "\n".join([*self._stdout, "--- stderr ---", *self._stderr])

    def _wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        def ready() -> bool:
            if check():
                return True
            if self.returncode is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.returncode}:\n{self.output()}"
                )
            return False

        try:
            wait_until(ready, timeout=timeout, message=f"{self.name} {what}")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.output()}") from err

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Interrupt (SIGINT), wait, kill if needed; return the exit status."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout)
        return self._process.returncode

    def wait_exit(self, timeout: float) -> int:
        """Wait for the tool to exit by itself and return its status.

        :raises AssertionError: if it still runs after ``timeout`` seconds.
        """
        try:
            code = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(
                f"{self.name} still runs after {timeout} s:\n{self.output()}"
            ) from err
        for reader in self._readers:
            reader.join(timeout)
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _MessageCollector(BackgroundTool):
    """A background subscriber that turns its output lines into messages."""

    def __init__(
        self, command: list[str], name: str, registry: ProcessRegistry | None
    ) -> None:
        self._messages: list[ReceivedMessage] = []
        self._subscribed = False
        super().__init__(command, name, registry)

    def messages(self) -> list[ReceivedMessage]:
        """The messages received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def wait_subscribed(self, timeout: float = 15.0) -> None:
        """Wait until the subscription is registered with the server.

        :raises AssertionError: if the tool exits or the deadline passes.
        """
        self._wait_for("subscribed", self._is_subscribed, timeout)

    def wait_for_messages(
        self, count: int, timeout: float = 15.0
    ) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived and return them all.

        :raises AssertionError: if the tool exits or the deadline passes.
        """
        self._wait_for(
            f"received {count} message(s)",
            lambda: len(self.messages()) >= count,
            timeout,
        )
        return self.messages()

    def _is_subscribed(self) -> bool:
        with self._lock:
            return self._subscribed


class StanSubProcess(_MessageCollector):
    """The official stan-sub example, running in the background.

    stan-sub logs every message as gogo protobuf text on stderr; each such
    line is parsed into a :class:`ReceivedMessage`.
    """

    def __init__(
        self,
        url: str,
        cluster_id: str,
        channel: str,
        *,
        client_id: str | None = None,
        all_available: bool = True,
        durable: str | None = None,
        registry: ProcessRegistry | None = None,
    ) -> None:
        """Start stan-sub at once.

        :param all_available: ``--all``: deliver the channel from its first
            message; otherwise only new messages.
        :param durable: ``--durable NAME``.
        :param client_id: defaults to a unique id.
        """
        self.client_id = client_id or unique_client_id("stan-sub")
        command = [
            str(find_binary("stan-sub")),
            "-s", url,
            "-c", cluster_id,
            "-id", self.client_id,
        ]  # fmt: skip
        if all_available:
            command.append("-all")
        if durable is not None:
            command += ["-durable", durable]
        command.append(channel)
        super().__init__(command, f"stan-sub[{self.client_id}]", registry)

    def _on_line(self, from_stdout: bool, line: str) -> None:
        if from_stdout:
            return
        if line.startswith("Listening on ["):
            self._subscribed = True
            return
        message = parse_stan_sub_line(line)
        if message is not None:
            self._messages.append(message)


class GoPeerSubProcess(_MessageCollector):
    """``stan-gopeer sub`` in the background: exact bytes, through base64."""

    def __init__(
        self,
        url: str,
        cluster_id: str,
        channel: str,
        *,
        client_id: str | None = None,
        all_available: bool = True,
        durable: str | None = None,
        count: int | None = None,
        registry: ProcessRegistry | None = None,
    ) -> None:
        """Start the peer at once.

        :param all_available: ``-all``: from the channel's first message.
        :param durable: ``-durable NAME``.
        :param count: exit after this many messages.
        :param client_id: defaults to a unique id.
        """
        self.client_id = client_id or unique_client_id("gopeer-sub")
        self.channel = channel
        command = [
            str(find_binary("stan-gopeer")),
            "sub",
            "-s", url,
            "-c", cluster_id,
            "-id", self.client_id,
        ]  # fmt: skip
        if all_available:
            command.append("-all")
        if durable is not None:
            command += ["-durable", durable]
        if count is not None:
            command += ["-count", str(count)]
        command.append(channel)
        super().__init__(command, f"gopeer-sub[{self.client_id}]", registry)

    def _on_line(self, from_stdout: bool, line: str) -> None:
        if not from_stdout:
            if line == "subscribed":
                self._subscribed = True
            return
        sequence, _, encoded = line.partition(" ")
        self._messages.append(
            ReceivedMessage(
                sequence=int(sequence),
                subject=self.channel,
                data=base64.b64decode(encoded, validate=True),
            )
        )
