// CleverVM console: live updates over server-sent events, and the actions, through /api/v1.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const body = document.body;
  const isOperator = body.dataset.operator === "1";
  const $ = (selector) => document.querySelector(selector);

  async function api(method, path, payload) {
    const response = await fetch(path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok && !(data && data.message)) throw new Error(data.error || response.statusText);
    return data;
  }

  function show(html, style) {
    const box = $("#result");
    if (!box) return;
    box.className = "mt-2 alert alert-" + (style || "info");
    box.replaceChildren();
    for (const [tag, text] of html) {
      const element = document.createElement(tag);
      element.textContent = text;
      box.appendChild(element);
      box.appendChild(document.createTextNode(" "));
    }
  }

  function showError(error) { show([["span", String(error.message || error)]], "danger"); }

  function item(list, text) {
    const li = document.createElement("li");
    li.textContent = text;
    list.appendChild(li);
  }

  function describe(action) {
    let text = action.action + " " + action.resource + " on " + action.node;
    if (action.migrationTarget) text += " → " + action.migrationTarget;
    if (action.reason) text += " (" + action.reason + ")";
    return text;
  }

  // Viewers see the actions but cannot press them.
  if (!isOperator) {
    for (const button of document.querySelectorAll("[data-operator-only]")) {
      button.disabled = true;
      button.title = "needs the operator role";
      if (button.tagName === "A") {
        button.classList.add("disabled");
        button.setAttribute("aria-disabled", "true");
        button.removeAttribute("href");
      }
    }
  }

  // MARK: live updates
  const live = $("#live");
  const state = $("#live-state");
  let refreshing = false, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const response = await fetch(location.pathname + location.search, { headers: { "X-Fragment": "1" }, credentials: "same-origin" });
      if (response.redirected || response.status === 401) { location.reload(); return; }
      if (response.ok && live) {
        live.innerHTML = await response.text();
        body.dataset.refreshed = String(Date.now());
        document.dispatchEvent(new CustomEvent("clevervm:refreshed"));
      }
    } finally {
      refreshing = false;
      if (again) { again = false; refresh(); }
    }
  }
  if (live && window.EventSource && body.dataset.page !== "explain") {
    const source = new EventSource("/api/v1/stream");
    source.addEventListener("open", () => { if (state) state.textContent = "live"; });
    source.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
    source.addEventListener("status", (message) => {
      const data = JSON.parse(message.data);
      if (state) state.textContent = data.agentError ? "agent down" : "live";
      if (String(data.version) !== body.dataset.version) {
        body.dataset.version = String(data.version);
        refresh();
      }
    });
  }

  // MARK: actions
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    try {
      if (action === "intent") {
        if (button.dataset.confirm && !confirm(button.dataset.confirm + "\n\n" + button.dataset.command)) return;
        const result = await api("POST", button.dataset.path, button.dataset.body ? JSON.parse(button.dataset.body) : {});
        show([["strong", result.result], ["code", result.command]], "success");
      } else if (action === "migrate-preview") {
        const section = $("#vm-actions");
        const target = $("#migrate-target").value;
        const report = await api("POST", "/api/v1/simulate", { events: ["migrate " + section.dataset.host + " --to " + target] });
        const list = $("#preview-actions");
        list.replaceChildren();
        if (report.actions.length === 0) item(list, "nothing would change");
        for (const entry of report.actions) item(list, describe(entry));
        for (const [resource, reason] of Object.entries(report.blocked || {})) item(list, resource + " could not run: " + reason);
        $("#preview-command").textContent = "clevervm migrate --node " + section.dataset.host + " --to " + target;
        $("#preview").classList.remove("d-none");
      } else if (action === "migrate-confirm") {
        const section = $("#vm-actions");
        const result = await api("POST", "/api/v1/migrate", { node: section.dataset.host, to: $("#migrate-target").value });
        $("#preview").classList.add("d-none");
        show([["strong", result.result], ["code", result.command], ["span", "Watching the move: this page follows it."]], "success");
      } else if (action === "preview-cancel") {
        $("#preview").classList.add("d-none");
      } else if (action === "verify") {
        const name = $("#volume-name").value;
        const result = await api("POST", "/api/v1/volumes/" + encodeURIComponent(name) + "/verify", {});
        show([["strong", result.message], ["code", result.command]], result.ok ? "success" : "danger");
      } else if (action === "resolve-dry-run" || action === "resolve-confirm") {
        const name = $("#volume-name").value;
        const discard = $("#discard-host").value;
        const dryRun = action === "resolve-dry-run";
        const result = await api("POST", "/api/v1/volumes/" + encodeURIComponent(name) + "/resolve", { discard, dryRun });
        if (dryRun) {
          const status = result.status || {};
          let counts = result.message;
          if (status.outOfSyncBlocks !== undefined) counts += " — changed here (" + status.node + "): " + status.outOfSyncBlocks + " blocks";
          if (status.peerChangedBlocks !== undefined && status.peerChangedBlocks !== null) counts += ", on " + status.peer + ": " + status.peerChangedBlocks + " blocks";
          $("#resolve-counts").textContent = counts;
          $("#resolve-victim").textContent = discard;
          $("#resolve-command").textContent = "clevervm volume resolve " + name + " --discard " + discard;
          $("#resolve-step").classList.toggle("d-none", !result.ok);
          show([["span", result.message], ["code", result.command]], result.ok ? "info" : "danger");
        } else {
          $("#resolve-step").classList.add("d-none");
          show([["strong", result.message], ["code", result.command]], result.ok ? "success" : "danger");
        }
      } else if (action === "resolve-cancel") {
        $("#resolve-step").classList.add("d-none");
      } else if (action === "whatif-add") {
        const kind = $("#whatif-kind").value, node = $("#whatif-node").value;
        const line = kind === "ping-loss" ? "attr " + node + " pingd=0" : kind + " " + node;
        item($("#whatif-events"), line);
      } else if (action === "whatif-clear") {
        $("#whatif-events").replaceChildren();
        $("#whatif-result").classList.add("d-none");
      } else if (action === "whatif-run") {
        const events = [...document.querySelectorAll("#whatif-events li")].map((li) => li.textContent);
        const report = await api("POST", "/api/v1/simulate", { events });
        const actions = $("#whatif-actions"), placement = $("#whatif-placement");
        actions.replaceChildren();
        placement.replaceChildren();
        if (report.actions.length === 0) item(actions, "nothing would change");
        for (const entry of report.actions) item(actions, describe(entry));
        for (const entry of report.placement) item(placement, entry.resource + ": " + entry.role + " on " + entry.node);
        const blocked = $("#whatif-blocked");
        blocked.textContent = Object.entries(report.blocked || {}).map(([r, why]) => r + " cannot run: " + why).join("; ");
        $("#whatif-command").textContent = report.command;
        $("#whatif-result").classList.remove("d-none");
      }
    } catch (error) {
      showError(error);
    }
  });

  // VM page: the actions follow the VM to its new host.
  document.addEventListener("clevervm:refreshed", () => {
    const facts = $("#vm-facts"), section = $("#vm-actions");
    if (facts && section && facts.dataset.host) {
      section.dataset.host = facts.dataset.host;
      $("#migrate-host").textContent = facts.dataset.host;
      const select = $("#migrate-target");
      for (const option of select.options) option.disabled = option.value === facts.dataset.host;
      if (select.selectedOptions[0] && select.selectedOptions[0].disabled) {
        const other = [...select.options].find((option) => !option.disabled);
        if (other) select.value = other.value;
      }
    }
  });

  // Volumes: the hosts one may discard are this host and the volume's peer.
  const volumeSelect = $("#volume-name");
  function fillDiscard() {
    const select = $("#discard-host");
    if (!volumeSelect || !select) return;
    select.replaceChildren();
    const option = volumeSelect.selectedOptions[0];
    const local = $("#volume-actions").dataset.local;
    for (const host of [local, option && option.dataset.peer].filter(Boolean)) {
      const element = document.createElement("option");
      element.textContent = host;
      select.appendChild(element);
    }
  }
  if (volumeSelect) { volumeSelect.addEventListener("change", fillDiscard); fillDiscard(); }

  // Events: keep the filter's choices.
  const params = new URLSearchParams(location.search);
  for (const name of ["vm", "host"]) {
    const select = document.getElementById(name);
    if (select && params.get(name)) select.value = params.get(name);
  }
})();
