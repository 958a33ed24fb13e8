"""Chapter 04: send() and emit() answer the sender, on its namespace or another; acks go both ways."""
import pytest
from playwright.sync_api import expect

XSS = '<img src=x onerror="window.pwned=1">'


# Flask-SocketIO's test client unwraps the one argument of unnamed 'message' and 'json' events.
@pytest.mark.parametrize(("event", "payload", "answer"), [
    ("message", "hi", {"name": "message", "args": "hi"}),
    ("json", {"data": "hi"}, {"name": "json", "args": {"data": "hi"}}),
    ("my event", {"data": "hi"}, {"name": "my response", "args": [{"data": "hi"}]}),
])
def test_echo_answers_the_sender_only(chapter, app, client, event, payload, answer):
    other = chapter.socketio.test_client(app)
    other.get_received()
    client.emit(event, payload)
    assert client.get_received() == [{**answer, "namespace": "/"}]
    assert other.get_received() == []


@pytest.mark.parametrize(("event", "answer"), [
    ("message to chat", {"name": "message", "args": "hi"}),
    ("my event to chat", {"name": "my response", "args": ["foo", "bar", {"data": "hi"}]}),
])
def test_answers_from_slash_arrive_on_chat(client, event, answer):
    client.connect("/chat")
    client.emit(event, "hi" if event == "message to chat" else {"data": "hi"})
    assert client.get_received("/chat") == [{**answer, "namespace": "/chat"}]
    assert client.get_received("/") == []


def test_answers_for_chat_need_a_chat_connection(client):
    client.connect("/chat")
    client.disconnect("/chat")
    assert client.emit("message to chat", "hi", callback=True) == {
        "error": "connect to /chat first: the answer goes there"}


@pytest.mark.parametrize(("event", "payload", "error"), [
    ("message", None, "the message must be a non-empty string"),
    ("message", 42, "the message must be a non-empty string"),
    ("message", "   ", "the message must be a non-empty string"),
    ("message", "x" * 501, "the message is longer than 500 characters"),
    ("json", "hi", "send an object of at most 500 characters when printed"),
    ("json", {"data": "x" * 500}, "send an object of at most 500 characters when printed"),
    ("my event", "hi", 'send an object like {"data": "hello"}'),
    ("my event", {"data": ["hi"]}, "'data' must be a non-empty string"),
    ("my event", {}, "'data' must be a non-empty string"),
    ("message to chat", {"data": "hi"}, "the message must be a non-empty string"),
    ("message to chat", "hi", "connect to /chat first: the answer goes there"),
    ("my event to chat", {"text": "hi"}, "'data' must be a non-empty string"),
    ("ask me", None, "'wait' must be a number of seconds, more than 0 and at most 10"),
    ("ask me", {"wait": "1"}, "'wait' must be a number of seconds, more than 0 and at most 10"),
    ("ask me", {"wait": True}, "'wait' must be a number of seconds, more than 0 and at most 10"),
    ("ask me", {"wait": 0}, "'wait' must be a number of seconds, more than 0 and at most 10"),
    ("ask me", {"wait": 11}, "'wait' must be a number of seconds, more than 0 and at most 10"),
])
def test_bad_input_is_refused_and_the_server_keeps_serving(client, event, payload, error):
    assert client.emit(event, payload, callback=True) == {"error": error}
    assert client.get_received() == [
        {"name": "bad_input", "namespace": "/", "args": [{"event": event, "error": error}]}]
    client.send("still here")
    assert client.get_received() == [{"name": "message", "namespace": "/", "args": "still here"}]


@pytest.mark.parametrize("answer", ["got hello", None])
def test_receipt_shows_what_the_client_answered(server, answering, answer):
    sio = answering({"my response": answer})
    sio.emit("my event", {"data": "hello"})
    assert sio.receive() == ["my response", {"data": "hello"}]
    assert sio.receive() == ["receipt", {"answer": answer}]
    assert f"message was received! {answer!r}" in server.output()


def test_call_returns_the_client_answer(answering):
    sio = answering({"question": "42"})
    sio.emit("ask me", {"wait": 5})
    assert sio.receive() == ["question", {"text": "What is your answer?"}]
    assert sio.receive() == ["call result", {"answer": "42"}]


@pytest.mark.parametrize(("event", "payload", "answered", "what"), [
    ("my event", {"data": "hi"}, "my response", "the receipt"),
    ("ask me", {"wait": 5}, "question", "the answer"),
])
@pytest.mark.parametrize(("answer", "problem"), [
    (42, "must be a non-empty string"),
    (("one", "two"), "must be a non-empty string"),
    ("x" * 501, "is longer than 500 characters"),
])
def test_client_answers_are_validated_too(answering, event, payload, answered, what, answer, problem):
    sio = answering({answered: answer})
    sio.emit(event, payload)
    assert sio.receive()[0] == answered
    assert sio.receive() == ["bad_input", {"event": answered, "error": f"{what} {problem}"}]


def test_a_waiting_call_blocks_only_its_own_handler(answering):
    silent = answering(silent={"question"})
    silent.emit("ask me", {"wait": 1})
    assert silent.receive() == ["question", {"text": "What is your answer?"}]
    silent.emit("ask me", {"wait": 1})
    still_waiting = "the server is still waiting for your previous answer"
    assert silent.receive() == ["bad_input", {"event": "ask me", "error": still_waiting}]
    other = answering()
    other.emit("message", "still served")
    assert other.receive() == ["message", "still served"]
    assert silent.events.empty(), "the other client was served only after the call had timed out"
    assert silent.receive() == ["call result", {"error": "no answer within 1 s"}]


def test_page_sends_emits_and_answers_on_chat(open_page):
    page = open_page()
    expect(page.locator("#chat-status")).to_contain_text("connected as ")
    for count, button in enumerate(("#send-message", "#send-json", "#emit-event"), start=1):
        page.click(button)
        expect(page.locator("#log li")).to_have_count(count)  # one at a time: handlers run concurrently
    expect(page.locator("#log li")).to_have_text(["message: hello", 'json: {"data":"hello"}', "my response: hello"])
    expect(page.locator("#receipt")).to_have_text("the server knows you got: hello")
    page.click("#send-chat")
    expect(page.locator("#chat-log li")).to_have_text(["message: hello"])
    page.click("#emit-chat")
    expect(page.locator("#chat-log li")).to_have_text(
        ["message: hello", 'my response with 3 arguments: "foo", "bar", {"data":"hello"}'])
    expect(page.locator("#log li")).to_have_count(3)


def test_page_answers_a_call_or_lets_it_time_out(open_page):
    page = open_page()
    page.fill("#answer", "yes")
    page.click("#ask")
    expect(page.locator("#question")).to_have_text("What is your answer?")
    expect(page.locator("#call-result")).to_have_text("the server got your answer: yes")
    page.check("#silent")
    page.fill("#wait", "0.5")
    page.click("#ask")
    expect(page.locator("#call-result")).to_have_text("no answer within 0.5 s")


def test_page_shows_bad_input(open_page):
    page = open_page()
    expect(page.locator("#status")).to_contain_text("connected as ")
    page.evaluate("socket.emit('my event', 42)")
    expect(page.locator("#errors li")).to_have_text(['my event: send an object like {"data": "hello"}'])


def test_user_text_is_shown_never_run(open_page):
    page = open_page()
    expect(page.locator("#chat-status")).to_contain_text("connected as ")
    page.fill("#text", XSS)
    for count, button in enumerate(("#send-message", "#emit-event"), start=1):
        page.click(button)
        expect(page.locator("#log li")).to_have_count(count)
    expect(page.locator("#log li")).to_have_text([f"message: {XSS}", f"my response: {XSS}"])
    page.click("#send-chat")
    expect(page.locator("#chat-log li")).to_have_text([f"message: {XSS}"])
    expect(page.locator("#receipt")).to_have_text(f"the server knows you got: {XSS}")
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
