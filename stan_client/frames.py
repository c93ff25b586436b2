"""Decoding the protobuf frames a NATS Streaming server sends."""

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from stan_client.errors import ProtocolError

_Frame = TypeVar("_Frame", bound=Message)


def decode(frame_type: type[_Frame], payload: bytes) -> _Frame:
    """Parse ``payload`` as a ``frame_type`` protobuf message.

    Whatever answers on a streaming subject may not be a streaming server
    (another service on the same NATS, a wrong cluster ID that happens to
    match something): its garbage must surface as a :class:`ProtocolError`,
    a :class:`~stan_client.errors.StanError` that callers already retry,
    not as protobuf's own exception that nobody expects.

    :raises ProtocolError: ``payload`` is not a valid ``frame_type``.
    """
    try:
        return frame_type.FromString(payload)
    except DecodeError as err:
        raise ProtocolError(
            f"not a valid {frame_type.__name__} frame ({len(payload)} bytes): {err}"
        ) from err
