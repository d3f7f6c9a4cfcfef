// Niceties only: every page works without this file.
// Controls submit on change, so the "Show" buttons can hide.
document.documentElement.classList.add("js");
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
  form.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
});
// A month opened from a link gets the focus, for keyboards and readers.
if (location.hash === "#month-detail") {
  var d = document.getElementById("month-detail");
  if (d) { d.focus(); }
}
