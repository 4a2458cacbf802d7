// The console's one script (progressive enhancement only): a form is not sent twice, and a
// button with data-confirm asks first.
document.addEventListener('submit', (event) => {
  const form = event.target;
  const asking = event.submitter && event.submitter.dataset.confirm;
  if (asking && !window.confirm(asking)) { event.preventDefault(); return; }
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = '1';
  window.setTimeout(() => { delete form.dataset.sent; }, 4000);
});
