// eidgate helpdesk console: look-up and status changes through /helpdesk/v1.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const auth = () => ({ Authorization: "Bearer " + $("token").value.trim() });

  async function lookup() {
    const r = await fetch("/helpdesk/v1/holders?identifier=" + encodeURIComponent($("identifier").value.trim()), { headers: auth() });
    const data = await r.json().catch(() => ({}));
    if (r.status !== 200) {
      $("result").textContent = data.title || "Look-up failed.";
      $("holder").hidden = true;
      return;
    }
    $("holder-name").textContent = data.holder.given_name + " " + data.holder.family_name + " (" + data.holder.identifier + ")";
    const tbody = $("means");
    const select = $("means-id");
    tbody.replaceChildren();
    select.replaceChildren();
    for (const m of data.means) {
      const row = document.createElement("tr");
      for (const t of [m.id, m.kind, m.loa, m.state]) {
        const td = document.createElement("td");
        td.textContent = t;
        row.appendChild(td);
      }
      tbody.appendChild(row);
      const opt = document.createElement("option");
      opt.value = m.id;
      opt.textContent = m.kind + " " + m.id.slice(0, 8) + " (" + m.state + ")";
      select.appendChild(opt);
    }
    $("holder").hidden = false;
  }

  $("lookup").addEventListener("submit", (e) => { e.preventDefault(); lookup(); });

  $("change").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = crypto.randomUUID();
    const r = await fetch("/helpdesk/v1/means/" + encodeURIComponent($("means-id").value) + "/" + $("command").value, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json", "Idempotency-Key": key }, auth()),
      body: JSON.stringify({ reason: $("reason").value, verification: { method: $("method").value, evidence: $("evidence").value } }),
    });
    const data = await r.json().catch(() => ({}));
    $("evidence").value = "";
    $("result").textContent = r.status === 200 ? "Done: the means is now " + data.state + "." : (data.title || "Failed") + (data.detail ? ": " + data.detail : "");
    lookup();
  });
})();
