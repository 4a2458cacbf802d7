// Console order pages: a "Print" button prints the page (the plan prints without the nav).
document.addEventListener('click', (event) => {
  const button = event.target.closest('[data-print]');
  if (button) { event.preventDefault(); window.print(); }
});
