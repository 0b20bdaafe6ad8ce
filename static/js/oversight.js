// Live fragments that update an element only if the page shows it (a feed row older than
// the page's newest, a queue item the page does not list, a banner not yet shown) carry
// data-oob-if-present: without their target, on the page or earlier in the same message,
// they are left out, as expected, instead of reaching htmx, which reports a missing target
// as an error (htmx:oobErrorNoTarget). The server sends a page only the parts it shows
// (oversight/live/pages.py).
//
// A new feed row or queue item (inserted: hx-swap-oob "afterbegin:..." or "beforeend:...")
// whose id the page already has is left out too: a page that read its live parts again
// after a reconnection (below) may already show it, and a second copy would be a lie.
//
// An update that is older than what the page shows is left out: a feed row carries its
// action's lifecycle rank (data-rank, oversight/live/rows.py), and two processes' messages
// about one action can arrive in the other order (a vote, then the outcome reported).
(function () {
  function targetOf(element) {
    var swap = element.getAttribute("hx-swap-oob") || "true";
    var colon = swap.indexOf(":");
    return colon > 0 ? swap.slice(colon + 1) : "#" + CSS.escape(element.id);
  }
  function arrivesBefore(content, element, selector) {
    return Array.prototype.some.call(content.querySelectorAll(selector), function (node) {
      return node !== element && !element.contains(node) &&
        (node.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING) !== 0;
    });
  }
  function older(element, shown) {
    var rank = element.getAttribute("data-rank");
    var shownRank = shown.getAttribute("data-rank");
    if (rank !== null && shownRank !== null && Number(rank) < Number(shownRank)) return true;
    // A card the person is voting on (its form's request in flight) waits for her answer,
    // rendered after her vote: an update swapped in first would detach the element the
    // answer is for, and leave buttons she can no longer use. Its removal still goes.
    var swap = element.getAttribute("hx-swap-oob") || "true";
    return swap !== "delete" && shown.querySelector(".htmx-request") !== null;
  }
  // A card the person voted on is shown as her vote (#voted-…) while it waits for others,
  // so its updates have no card to land on. An update with another request hash than the
  // one she voted on comes from an edit, which superseded the votes given so far
  // (approvals/edits.py): it takes the vote's place, buttons and all, as a reload would
  // show it. Any other update (another vote counted) has her vote read itself again, as
  // what it says is hers (approvals/_queue_voted.html).
  function landsOnAVote(element) {
    if ((element.getAttribute("hx-swap-oob") || "true") !== "true") return false;
    if (element.id.indexOf("queue-") !== 0 || document.getElementById(element.id)) return false;
    var voted = document.getElementById("voted-" + element.id.slice("queue-".length));
    var hash = element.getAttribute("data-request-hash");
    if (!voted || !hash) return false;
    if (voted.getAttribute("data-request-hash") === hash) {
      htmx.trigger(voted, "queue-item-changed");
      return false;
    }
    element.setAttribute("hx-swap-oob", "outerHTML:#" + CSS.escape(voted.id));
    return true;
  }
  var INSERTS = /^(afterbegin|beforeend):/;
  function dropShown(element) {
    Array.prototype.slice.call(element.children).forEach(function (child) {
      if (child.id && document.getElementById(child.id)) child.remove();
    });
    if (!element.children.length) element.remove();
  }
  htmx.defineExtension("oob-if-present", {
    transformResponse: function (text) {
      if (text.indexOf("data-oob-if-present") === -1 && !/hx-swap-oob="(afterbegin|beforeend):/.test(text)) {
        return text;
      }
      var template = document.createElement("template");
      template.innerHTML = text;
      var content = template.content;
      Array.prototype.slice.call(content.children).forEach(function (element) {
        if (INSERTS.test(element.getAttribute("hx-swap-oob") || "")) dropShown(element);
        if (!element.parentNode || !element.hasAttribute("data-oob-if-present")) return;
        if (landsOnAVote(element)) return;
        var target = targetOf(element);
        try {
          var shown = document.querySelector(target);
          if (shown ? !older(element, shown) : arrivesBefore(content, element, target)) return;
        } catch (error) {
          return;  // not a selector this check understands: htmx decides
        }
        element.remove();
      });
      return template.innerHTML;
    },
  });
})();

// A live socket that comes back (a dropped network, a restarted server) is not sent what
// happened while it was down. When it is back the page reads its live parts again, as a
// reload would show them: each [data-live] element is replaced by the one of the same id,
// and the parts that re-read themselves are told to (alerts-changed, overview-refresh).
// Nothing is reloaded. From the drop until the page has caught up, it says its live
// updates are paused (#live-status).
(function () {
  var RETRIED = [1006, 1011, 1012, 1013];  // the close codes htmx's ws extension retries after
  var dropped = new WeakSet();  // sockets' elements that lost their connection
  function paused(yes) {
    var note = document.getElementById("live-status");
    if (note) note.hidden = !yes;
  }
  function catchUp() {
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status >= 500) throw new Error("status " + response.status);
        // Refused, or redirected (to the login page, say): not this page's parts.
        return response.ok && !response.redirected ? response.text() : "";
      })
      .then(function (html) {
        paused(false);
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (element) {
          var next = element.id && fresh.getElementById(element.id);
          if (!next) return;
          var copy = document.importNode(next, true);
          element.replaceWith(copy);
          htmx.process(copy);
        });
        htmx.trigger(document.body, "alerts-changed");
        htmx.trigger(document.body, "overview-refresh");
      })
      .catch(function () { setTimeout(catchUp, 5000); });  // still paused: try again
  }
  document.addEventListener("htmx:wsClose", function (event) {
    var closed = event.detail && event.detail.event;
    if (!closed || RETRIED.indexOf(closed.code) === -1) return;
    dropped.add(event.target);
    paused(true);
  });
  document.addEventListener("htmx:wsOpen", function (event) {
    if (!dropped.has(event.target)) return;
    dropped.delete(event.target);
    catchUp();  // the note stays until the page has caught up
  });
  // An action's page, when that action changed (live/broadcasts.py: action_changed swaps
  // #action-changed in, naming it): its status, facts and story are read again the same way.
  document.addEventListener("htmx:load", function (event) {
    if (event.target.id !== "action-changed") return;
    var page = document.querySelector("[data-action-page]");
    if (page && page.getAttribute("data-action-page") === event.target.getAttribute("data-action")) {
      catchUp();
    }
  });
})();

// Countdowns to approval deadlines: "expires in 4m 12s", ticking each second.
(function () {
  function format(ms) {
    if (ms <= 0) return "expired";
    var s = Math.floor(ms / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h > 0) return "expires in " + h + "h " + (m % 60) + "m";
    if (m > 0) return "expires in " + m + "m " + (s % 60) + "s";
    return "expires in " + s + "s";
  }
  function tick() {
    document.querySelectorAll("[data-expires-at]").forEach(function (el) {
      var ms = Date.parse(el.dataset.expiresAt) - Date.now();
      el.textContent = format(ms);
      el.classList.toggle("urgent", ms < 60000);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();

// The approval queue stays most urgent first: a held action that arrives over the socket
// is appended, then moved to its place by its deadline.
(function () {
  function deadline(item) {
    var el = item.querySelector("[data-expires-at]");
    var t = el ? Date.parse(el.dataset.expiresAt) : NaN;
    return isNaN(t) ? Infinity : t;
  }
  function sortQueue() {
    var queue = document.getElementById("approval-queue");
    if (!queue) return;
    var items = Array.prototype.slice.call(queue.children);
    var sorted = items.slice().sort(function (a, b) { return deadline(a) - deadline(b); });
    if (sorted.every(function (item, i) { return item === items[i]; })) return;
    sorted.forEach(function (item) { queue.appendChild(item); });
  }
  document.addEventListener("htmx:oobAfterSwap", sortQueue);
  document.addEventListener("htmx:wsAfterMessage", sortQueue);
})();

// A held action's card, for one who may not decide it now (an admin before it is
// escalated, say): the card is one HTML for everyone (live), so it names who may decide
// it (data-deciders) and the page's person is body[data-me]; the forms give way to a
// note. The server refuses such a vote anyway (approvals/eligibility.py).
(function () {
  function mark(root) {
    var me = document.body.getAttribute("data-me");
    if (!me) return;
    var cards = root.querySelectorAll ? root.querySelectorAll("[data-deciders]") : [];
    if (root.matches && root.matches("[data-deciders]")) cards = [root].concat(Array.prototype.slice.call(cards));
    Array.prototype.forEach.call(cards, function (card) {
      var deciders = card.getAttribute("data-deciders").split(" ");
      card.classList.toggle("not-yours", deciders.indexOf(me) < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { mark(document); });
  document.addEventListener("htmx:load", function (event) { mark(event.target); });
})();

// The compact approval list: a row is one line while its resource and params fit it;
// where they do not, they take lines of their own, shown whole (.queue-row-whole): a
// one-click Approve never approves what the row cuts short. Checked as rows arrive and
// when the window's width changes; reads all rows, then writes, so one layout each.
(function () {
  function cut(row) {
    // The resource is cut with an ellipsis; a param that does not fit wraps onto the
    // params' hidden second line, or (one too wide for the box) runs off its side.
    var what = row.querySelector(".queue-row-what");
    var params = row.querySelector(".queue-row-params");
    if (what && what.scrollWidth > what.clientWidth + 1) return true;
    if (!params || !params.firstElementChild) return false;
    var top = params.firstElementChild.offsetTop;
    return params.scrollWidth > params.clientWidth + 1 ||
      Array.prototype.some.call(params.children, function (part) { return part.offsetTop > top; });
  }
  function fit(root, again) {
    var rows = root.querySelectorAll ? Array.prototype.slice.call(root.querySelectorAll(".queue-row")) : [];
    if (root.matches && root.matches(".queue-row")) rows.push(root);
    if (again) rows.forEach(function (row) { row.classList.remove("queue-row-whole"); });
    rows.filter(cut).forEach(function (row) { row.classList.add("queue-row-whole"); });
  }
  var width = window.innerWidth;
  document.addEventListener("DOMContentLoaded", function () { fit(document); });
  document.addEventListener("htmx:load", function (event) { fit(event.target); });
  window.addEventListener("resize", function () {
    if (window.innerWidth === width) return;
    width = window.innerWidth;
    fit(document, true);
  });
})();

// An alert changed (live/broadcasts.py: alert_changed swaps #alerts-changed in): the
// alert list re-reads its table, with its filters.
(function () {
  document.addEventListener("htmx:load", function (event) {
    if (event.target.id === "alerts-changed") htmx.trigger(document.body, "alerts-changed");
  });
})();

// Copy buttons: <button data-copy="#selector"> copies that element's text.
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    function select() { window.getSelection().selectAllChildren(source); }
    if (!navigator.clipboard) return select();  // plain HTTP: the person copies it
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    }, select);
  });
})();

// Popovers (<details class="ks-control">: the kill-switch menu, Retire). Opening one puts
// the caret in its first text box; Escape closes it and gives focus back to its button;
// a click elsewhere closes it.
(function () {
  function openPopovers() { return document.querySelectorAll("details.ks-control[open]"); }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openPopovers().forEach(function (details) {
      details.open = false;
      var summary = details.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  // "toggle" does not bubble: listen as it is captured.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches("details.ks-control") || !details.open) return;
    var field = details.querySelector("textarea, input:not([type=hidden]), select");
    if (field) field.focus();
  }, true);
  document.addEventListener("click", function (event) {
    openPopovers().forEach(function (details) {
      if (!details.contains(event.target)) details.open = false;
    });
  });
})();
