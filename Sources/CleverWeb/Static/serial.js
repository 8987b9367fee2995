// The VM's serial console as plain text: the console's websocket carries the guest's bytes; typed lines and keys go
// back as they are. Terminal escape sequences are dropped (a plain view, not a terminal emulator).
"use strict";
(function () {
  const output = document.getElementById("serial-output");
  const status = document.getElementById("serial-status");
  const input = document.getElementById("serial-input");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + output.dataset.websocket;
  const limit = 200000;
  let socket = null;
  let decoder = new TextDecoder();

  function state(name, text, style) {
    status.dataset.state = name;
    status.textContent = text;
    status.className = "badge text-bg-" + style;
  }

  let pending = "";

  function append(received) {
    // An escape sequence may be cut between two messages: hold its start back until the rest arrives.
    let text = pending + received;
    pending = "";
    const start = text.lastIndexOf("\x1b");
    if (start >= 0 && !/^\x1b(\[[0-9;?]*[ -\/]*[@-~]|[()][0-9A-Za-z]|[^\[()])/.test(text.slice(start)) && text.length - start < 32) {
      pending = text.slice(start);
      text = text.slice(0, start);
    }
    const clean = text.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/\x1b[()][0-9A-Za-z]/g, "").replace(/\x1b[^\[()]/g, "").replace(/\r(?!\n)/g, "").replace(/\r/g, "");
    let all = output.textContent;
    for (const character of clean) {
      if (character === "\b") all = all.slice(0, -1);
      else if (character === "\x07") continue;
      else all += character;
    }
    output.textContent = all.length > limit ? all.slice(all.length - limit) : all;
    output.scrollTop = output.scrollHeight;
  }

  function send(text) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(new TextEncoder().encode(text));
  }

  function connect() {
    state("connecting", "connecting…", "warning");
    decoder = new TextDecoder();
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => state("connected", "connected", "success");
    socket.onmessage = (event) => {
      if (typeof event.data === "string") state("error", event.data, "danger");
      else append(decoder.decode(new Uint8Array(event.data), { stream: true }));
    };
    socket.onclose = () => {
      // The VM stopped or moved (its console closed), or this console refused: try again.
      if (status.dataset.state !== "error") state("disconnected", "console closed: reconnecting…", "danger");
      setTimeout(connect, 2000);
    };
  }

  document.getElementById("serial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value + "\r");
    input.value = "";
  });
  document.getElementById("serial-ctrl-c").addEventListener("click", () => send("\x03"));
  const keys = { Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D" };
  output.addEventListener("keydown", (event) => {
    let text = keys[event.key];
    if (!text && event.ctrlKey && event.key.length === 1) text = String.fromCharCode(event.key.toUpperCase().charCodeAt(0) & 0x1f);
    else if (!text && event.key.length === 1 && !event.altKey && !event.metaKey) text = event.key;
    if (!text) return;
    event.preventDefault();
    send(text);
  });
  connect();
})();
