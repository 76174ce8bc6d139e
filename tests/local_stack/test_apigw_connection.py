"""Sans-I/O tests of one connection's state machine: frames, limits, timeouts, closes."""
import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

from local_stack.apigw import connection, events

def make_connection(**kwargs):
    values = dict(connection_id=events.new_connection_id(), request=events.HandshakeRequest(), connected_at=1000.0,
                  idle_timeout=600.0, max_duration=7200.0)
    values.update(kwargs)
    return connection.Connection(**values)


def client_bytes(*frames):
    """What a client sends for these frames (masked, as RFC 6455 5.3 requires)."""
    client = Protocol(Side.CLIENT)
    for opcode, data, fin in frames:
        client.send_frame(Frame(opcode, data, fin))
    return b"".join(client.data_to_send())


def server_frames(conn):
    """Parse what the server wrote back, as a client would."""
    client = Protocol(Side.CLIENT, max_size=None)
    for chunk in conn.data_to_send():
        if chunk:
            client.receive_data(chunk)
    return client.events_received()


class TestConnection:
    def test_messages_flow_after_accept(self):
        """Complete text and binary messages come out of receive_data."""
        conn = make_connection()
        conn.accept({"principalId": "p"})
        data = client_bytes((Opcode.TEXT, b"hello", True), (Opcode.BINARY, b"\x01\x02", True))
        assert conn.receive_data(data, 1001.0) == [connection.Message("hello"), connection.Message(b"\x01\x02")]
        assert conn.last_active_at == 1001.0
        assert conn.state is connection.State.OPEN

    def test_fragments_are_assembled(self):
        """A fragmented message is delivered once, whole."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"he", False), (Opcode.CONT, b"ll", False),
                            (Opcode.CONT, b"o", True))
        assert conn.receive_data(data, 1001.0) == [connection.Message("hello")]

    def test_send_during_connect_is_gone(self):
        """A post to a connection still in $connect is refused (410)."""
        conn = make_connection()
        with pytest.raises(connection.ConnectionGone):
            conn.send("early")

    def test_send_writes_a_text_frame(self):
        """Posting text produces one unmasked text frame."""
        conn = make_connection()
        conn.accept()
        conn.send("hi")
        conn.send(b"\xff")
        frames = server_frames(conn)
        assert [(f.opcode, bytes(f.data)) for f in frames] == [(Opcode.TEXT, b"hi"), (Opcode.BINARY, b"\xff")]

    def test_frame_over_32kb_closes_with_1009(self):
        """A single frame over 32 KB fails the connection with 1009."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"x" * (32 * 1024 + 1), True))
        assert conn.receive_data(data, 1001.0) == []
        out = conn.data_to_send()
        assert out[-1] == b""  # the server closes the socket
        client = Protocol(Side.CLIENT)
        client.receive_data(b"".join(out))
        close = client.events_received()[0]
        assert Close.parse(close.data).code == 1009
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() == connection.Disconnect(1009, "Message too big")

    def test_frame_of_exactly_32kb_is_accepted(self):
        """32 KB is the limit, inclusive."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"x" * (32 * 1024), True))
        assert len(conn.receive_data(data, 1001.0)) == 1

    def test_message_over_128kb_in_small_frames_closes_with_1009(self):
        """Fragments under 32 KB adding up to over 128 KB close with 1009."""
        conn = make_connection()
        conn.accept()
        chunk = b"y" * (32 * 1024)
        frames = [(Opcode.TEXT, chunk, False)] + [(Opcode.CONT, chunk, False)] * 3
        frames.append((Opcode.CONT, b"z", True))
        assert conn.receive_data(client_bytes(*frames), 1001.0) == []
        conn.data_to_send()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1009

    @pytest.mark.parametrize("fragments", [
        [b"\xff"],  # never valid in UTF-8
        [b"\xc0\xaf"],  # overlong encoding of '/'
        [b"\xed\xa0\x80"],  # a UTF-16 surrogate
        [b"ok \xed", b"\xa0\x80"],  # invalid only once the fragments are joined
    ])
    def test_invalid_utf8_text_fails_with_1007(self, fragments):
        """RFC 6455 8.1: a text message that is not UTF-8 closes with 1007; no
        message comes out, and nothing after it is processed."""
        conn = make_connection()
        conn.accept()
        frames = [(Opcode.TEXT if i == 0 else Opcode.CONT, data, i == len(fragments) - 1)
                  for i, data in enumerate(fragments)]
        frames.append((Opcode.TEXT, b"after", True))
        assert conn.receive_data(client_bytes(*frames), 1001.0) == []
        out = conn.data_to_send()
        assert out[-1] == b""  # the server closes the socket after its close frame
        client = Protocol(Side.CLIENT)
        client.receive_data(b"".join(out))
        assert Close.parse(client.events_received()[0].data).code == 1007
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() == connection.Disconnect(1007, "Invalid frame payload data")

    def test_invalid_utf8_before_a_close_frame_is_still_1007(self):
        """A bad text message and the client's close in one read: the bad message
        fails the connection first (1007); the close frame after it is not read."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"\xff", True), (Opcode.CLOSE, Close(1000, "").serialize(), True))
        conn.receive_data(data, 1001.0)
        conn.data_to_send()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1007

    def test_an_invalid_first_fragment_fails_at_once(self):
        """UTF-8 is checked frame by frame: a bad first fragment fails the
        connection before the message is complete."""
        conn = make_connection()
        conn.accept()
        conn.receive_data(client_bytes((Opcode.TEXT, b"\xc0\xaf", False)), 1001.0)
        assert conn.state is connection.State.CLOSING

    def test_multibyte_characters_across_fragments_are_valid(self):
        """UTF-8 is checked on the whole message: a character split over frames is fine."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"caf\xc3", False), (Opcode.CONT, b"\xa9", True))
        assert conn.receive_data(data, 1001.0) == [connection.Message("café")]

    def test_client_close_reports_code_and_reason_once(self):
        """A client close frame gives $disconnect its code and reason, exactly once."""
        conn = make_connection()
        conn.accept()
        client = Protocol(Side.CLIENT)
        client.send_close(4000, "bye")
        conn.receive_data(b"".join(client.data_to_send()), 1001.0)
        assert conn.state is connection.State.CLOSING
        assert conn.data_to_send()[-1] == b""
        conn.receive_eof(1001.0)
        assert conn.state is connection.State.CLOSED
        assert conn.take_disconnect() == connection.Disconnect(4000, "bye")
        assert conn.take_disconnect() is None
        conn.receive_eof(1002.0)
        conn.abort()
        assert conn.take_disconnect() is None

    def test_close_without_status(self):
        """A close frame without a code is reported as 1005 with API Gateway's reason."""
        conn = make_connection()
        conn.accept()
        conn.receive_data(client_bytes((Opcode.CLOSE, b"", True)), 1001.0)
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() == connection.Disconnect(1005, "Client-side close frame status not set")

    def test_dropped_socket_is_1006(self):
        """A socket lost without a close frame is reported as 1006."""
        conn = make_connection()
        conn.accept()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1006

    def test_server_close_is_1000_and_completes(self):
        """DELETE @connections sends 1000; the client's reply completes the close."""
        conn = make_connection()
        conn.accept()
        conn.close(1000)
        frames = server_frames(conn)
        assert Close.parse(frames[0].data).code == 1000
        with pytest.raises(connection.ConnectionGone):
            conn.send("late")
        conn.receive_data(client_bytes((Opcode.CLOSE, Close(1000, "").serialize(), True)), 1001.0)
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1000

    def test_abort_after_unanswered_close(self):
        """A client that never answers the close still gets exactly one $disconnect."""
        conn = make_connection()
        conn.accept()
        conn.close(1000)
        conn.abort()
        assert conn.state is connection.State.CLOSED
        assert conn.take_disconnect().status_code == 1000
        assert conn.take_disconnect() is None

    def test_idle_timeout_closes_with_1001(self):
        """No message for idle_timeout seconds closes with 1001."""
        conn = make_connection(idle_timeout=10.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.TEXT, b"hi", True)), 1005.0)
        assert conn.deadline() == 1015.0
        assert conn.check_timeouts(1014.9) is None
        assert conn.check_timeouts(1015.0) == "idle"
        assert Close.parse(server_frames(conn)[0].data).code == 1001
        conn.abort()
        assert conn.take_disconnect() == connection.Disconnect(1001, "Going away")

    def test_pings_do_not_reset_the_idle_timer(self):
        """Control frames are not activity; only messages are."""
        conn = make_connection(idle_timeout=10.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.PING, b"", True)), 1005.0)
        assert conn.last_active_at == 1000.0
        assert server_frames(conn)[0].opcode is Opcode.PONG

    def test_max_duration_closes_with_1001(self):
        """A connection older than max_duration closes with 1001, even if active."""
        conn = make_connection(idle_timeout=10.0, max_duration=20.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.TEXT, b"hi", True)), 1015.0)
        assert conn.deadline() == 1020.0
        assert conn.check_timeouts(1020.0) == "max_duration"

    def test_socket_lost_during_connect_never_disconnects(self):
        """A client gone before $connect finished gets no $disconnect unless accepted."""
        conn = make_connection()
        conn.receive_eof(1001.0)
        assert conn.state is connection.State.CLOSED
        assert conn.take_disconnect() is None

    def test_abort_during_connect_never_disconnects(self):
        """A connection aborted (gateway shutdown) while still in $connect never
        gets $disconnect, and cannot be accepted afterwards."""
        conn = make_connection()
        conn.abort()
        assert conn.state is connection.State.CLOSED
        assert conn.take_disconnect() is None
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() is None
        with pytest.raises(RuntimeError):
            conn.accept()

    def test_refused_connection_never_disconnects(self):
        """A refused $connect fires no $disconnect."""
        conn = make_connection()
        conn.refuse()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() is None
