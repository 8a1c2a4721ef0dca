// Quasar dashboard: keeps the page's live region current without a reload. Every few seconds
// it asks the same URL for the region alone (X-Quasar-Fragment: 1) and swaps it in; it waits
// while the tab is hidden or while someone is typing in a field of the region.
(() => {
  const region = document.querySelector("main[data-live]");
  if (!region) return;
  const every = Math.max(1000, Number(region.dataset.live) || 5000);
  let busy = false;
  const typing = () => {
    const active = document.activeElement;
    return active && region.contains(active) && active.matches("input, select, textarea");
  };
  const refresh = async () => {
    if (busy || document.hidden || typing()) return;
    busy = true;
    try {
      const response = await fetch(location.href, {
        headers: { "x-quasar-fragment": "1" },
        credentials: "same-origin",
        cache: "no-store",
      });
      // Signed out or the session expired: show the sign-in page.
      if (response.status === 401) location.reload();
      else if (response.ok) {
        region.innerHTML = await response.text();
        region.dataset.refreshed = String(Date.now());
      }
    } catch {
      // The API restarted or the network blinked: the next tick tries again.
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, every);
})();
