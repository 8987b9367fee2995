// The VM's screen: Debian's noVNC (served by this console from /usr/share/novnc) over the console's websocket.
import RFB from "/novnc/core/rfb.js";

const box = document.getElementById("screen");
const status = document.getElementById("screen-status");
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + box.dataset.websocket;
let rfb = null;

function state(name, text, style) {
  status.dataset.state = name;
  status.textContent = text;
  status.className = "badge text-bg-" + style;
}

function connect() {
  state("connecting", "connecting…", "warning");
  rfb = new RFB(box, url);
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => state("connected", "connected", "success"));
  rfb.addEventListener("disconnect", (event) => {
    // The VM stopped or moved, or this console refused: try again, as `clevervm console` does.
    state("disconnected", event.detail.clean ? "disconnected: reconnecting…" : "connection lost: reconnecting…", "danger");
    setTimeout(connect, 2000);
  });
}

document.getElementById("screen-ctrl-alt-del").addEventListener("click", () => rfb && rfb.sendCtrlAltDel());
connect();
