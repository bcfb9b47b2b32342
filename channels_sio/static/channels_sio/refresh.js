// Reloads a live page of the channels_sio admin every data-interval ms (the nodes' flush
// interval), from the button #csio-refresh, which pauses and resumes it. It waits while the
// page is in use: rows selected, an action chosen, a field being typed in, the tab hidden.
// Paused stays paused for this tab (sessionStorage) across reloads and pages.
"use strict";
{
  const KEY = "channels_sio.refresh.paused";
  const button = document.getElementById("csio-refresh");
  if (button) {
    const interval = Math.max(Number(button.dataset.interval) || 5000, 1000);
    let paused = sessionStorage.getItem(KEY) === "1";

    const show = () => {
      button.textContent = paused ? "Resume refresh" : "Pause refresh";
      button.setAttribute("aria-pressed", String(paused));
      button.classList.toggle("csio-paused", paused);
    };

    const busy = () => {
      if (document.hidden) return true;
      if (document.querySelector("input.action-select:checked, #action-toggle:checked")) return true;
      const action = document.querySelector('select[name="action"]');
      if (action && action.value) return true;
      // Typing in a field (the search bar): its text is not what the page was loaded with.
      const active = document.activeElement;
      return Boolean(
        active && active.matches("input[type=text], input[type=search], textarea") &&
          active.value !== active.defaultValue,
      );
    };

    const tick = () => {
      if (!paused && !busy()) {
        window.location.reload();
        return;
      }
      window.setTimeout(tick, interval);
    };

    button.addEventListener("click", () => {
      paused = !paused;
      sessionStorage.setItem(KEY, paused ? "1" : "0");
      show();
    });
    button.hidden = false;
    show();
    window.setTimeout(tick, interval);
  }
}
