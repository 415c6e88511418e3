
(function(){
  function openTarget(){
    var id = decodeURIComponent(location.hash.slice(1));
    if (id === 'whole-graph') { showGraph(true); return; }
    var el = id && document.getElementById(id);
    if (!el) return;
    for (var p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    el.scrollIntoView();
  }
  var toggle = document.getElementById('graph-toggle');
  var focus = document.getElementById('graph-focus');
  var full = document.getElementById('graph-full');
  function showGraph(whole){
    if (!toggle || !full) return;
    if (whole && !full.firstChild) {
      full.appendChild(document.getElementById('graph-full-template').content.cloneNode(true));
    }
    var shown = !full.hidden;
    if (whole === shown) return;
    full.hidden = !whole; focus.hidden = whole;
    var text = toggle.getAttribute('data-other');
    toggle.setAttribute('data-other', toggle.textContent); toggle.textContent = text;
  }
  if (toggle) toggle.addEventListener('click', function(){ showGraph(full.hidden); });
  function setAll(open){ document.querySelectorAll('details.cycle').forEach(function(d){ d.open = open; }); }
  var oa = document.getElementById('open-all'), ca = document.getElementById('close-all');
  if (oa) oa.addEventListener('click', function(){ setAll(true); });
  if (ca) ca.addEventListener('click', function(){ setAll(false); });
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads = table.querySelectorAll('th');
    heads.forEach(function(th, col){
      th.querySelector('button').addEventListener('click', function(){
        var num = th.getAttribute('data-sort') === 'num';
        var was = th.getAttribute('aria-sort');
        // The first click sorts numbers largest first and text A to Z; the next one reverses.
        var now = was === 'none' ? (num ? 'descending' : 'ascending') : (was === 'ascending' ? 'descending' : 'ascending');
        var dir = now === 'ascending' ? 1 : -1;
        heads.forEach(function(h){ h.setAttribute('aria-sort', 'none'); });
        th.setAttribute('aria-sort', now);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(r){ var c = r.cells[col]; var v = c.getAttribute('data-v'); return v === null ? c.textContent : v; }
        rows.sort(function(a, b){
          var x = key(a), y = key(b);
          var d = num ? (parseFloat(x) - parseFloat(y)) : String(x).localeCompare(String(y));
          return d * dir;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  window.addEventListener('hashchange', openTarget);
  openTarget();
  document.documentElement.setAttribute('data-ready', 'yes');
})();
