// The approver's service worker (issue 24): shows the server's push as a notification, and
// opens the approval page it names, on this origin only, when the notification is tapped.
"use strict";
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  event.waitUntil(
    self.registration.showNotification(data.title || "", {
      body: data.body || "",
      tag: data.tag || "approval",
      requireInteraction: true,
      data: { url: data.url || "" },
    })
  );
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = new URL((event.notification.data || {}).url || "", self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil(self.clients.openWindow(url.href));
});
