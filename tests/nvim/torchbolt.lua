-- torchbolt language server in Neovim 0.11+: put this in your init.lua (README "Neovim").
vim.lsp.config('torchbolt', {
  cmd = { 'torchbolt-lsp' },            -- or { '/path/to/venv/bin/python', '-m', 'torchbolt_lsp' }
  filetypes = { 'python' },
  root_markers = { 'pyproject.toml', '.git' },
  -- init_options = { trusted = true },  -- skip the "Run once / Trust this folder" prompt for every folder
})
vim.lsp.enable('torchbolt')

vim.api.nvim_create_autocmd('LspAttach', {
  callback = function(ev)
    local client = vim.lsp.get_client_by_id(ev.data.client_id)
    if not client or client.name ~= 'torchbolt' then
      return
    end
    vim.lsp.inlay_hint.enable(true, { bufnr = ev.buf }) -- live metric values after self.log(...)
    vim.lsp.codelens.refresh({ bufnr = ev.buf }) -- Fit / Validate / Test / Find LR / TensorBoard lenses
    vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave', 'BufWritePost' }, {
      buffer = ev.buf,
      callback = function()
        vim.lsp.codelens.refresh({ bufnr = ev.buf })
      end,
    })
    vim.keymap.set('n', '<leader>tr', vim.lsp.codelens.run, { buffer = ev.buf, desc = 'torchbolt: run the lens' })
  end,
})

-- A run's progress arrives as $/progress (see :checkhealth vim.lsp, vim.lsp.status() for a statusline).
-- Neovim has no codeLens refresh request: re-pull the lenses when a run starts or ends, so Stop shows.
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(ev)
    local value = ev.data.params.value
    if type(value) == 'table' and (value.kind == 'begin' or value.kind == 'end') then
      vim.lsp.codelens.refresh()
    end
  end,
})
